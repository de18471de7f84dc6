"""Per-user submit limit (lomas server.submit_limit): DP submissions per user and time window; sign-in throttle.

Counts are fixed-window counters in the Django cache: atomic and shared by every web process
and host when the cache is Redis. A refused submission answers 429 in the lomas error shape
(UnauthorizedAccessException), which lomas-client raises with its message.
"""

import hashlib
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from lomas.errors import UnauthorizedAccess

# Seconds since the epoch; the windows are aligned on it (tests may set a fake clock).
clock = time.time

SUBMIT_LIMIT_REACHED = (
    "User {user} has reached the limit of {limit} submissions in {window} s. Please, retry in {retry} s."
)


class SubmitLimitReached(UnauthorizedAccess):
    """Too many submissions in the current window (429)."""

    status = 429

    def __init__(self, *, user: str, limit: int, window: int, retry_after: int) -> None:
        super().__init__(SUBMIT_LIMIT_REACHED.format(user=user, limit=limit, window=window, retry=retry_after))
        self.retry_after = retry_after


def submit_limit_check(*, user_id: int, user_name: str) -> None:
    """Count one submission of the user; raise SubmitLimitReached past LOMAS_SUBMIT_LIMIT in the window."""
    limit, window = settings.LOMAS_SUBMIT_LIMIT, settings.LOMAS_SUBMIT_LIMIT_WINDOW
    if limit <= 0:
        return
    now = clock()
    current = int(now // window)
    key = f"submit-limit:{user_id}:{window}:{current}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # the key expired between add() and incr()
        cache.add(key, 1, timeout=window + 1)
        count = 1
    if count > limit:
        retry_after = max(1, int((current + 1) * window - now + 0.999))
        raise SubmitLimitReached(user=user_name, limit=limit, window=window, retry_after=retry_after)


# --- Sign-in throttle -------------------------------------------------------------------------------
# Password guessing (the password grant of /o/token/, the sign-in pages): failures are counted per user
# name and per client address in the cache; LOMAS_SIGN_IN_FAILURE_LIMIT of them within
# LOMAS_SIGN_IN_FAILURE_WINDOW s start a cool-down of LOMAS_SIGN_IN_COOLDOWN s in which every attempt
# under that name or from that address is refused (429 with Retry-After), the right password included.

SIGN_IN_THROTTLED = "Too many failed sign-ins for this user name or from this address. Please, retry in {retry} s."


def client_address(request: HttpRequest) -> str:
    """The caller's address: REMOTE_ADDR, or behind LOMAS_NUM_PROXIES proxies what the outermost one saw."""
    proxies = settings.LOMAS_NUM_PROXIES
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")


def _sign_in_keys(*, username: str, address: str) -> tuple[str, str]:
    name = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
    return f"sign-in:name:{name}", f"sign-in:address:{address}"


def sign_in_retry_after(*, username: str, address: str) -> int:
    """Seconds until the name and the address may try again (0: now)."""
    until = max(cache.get(f"{key}:until", 0) for key in _sign_in_keys(username=username, address=address))
    return max(0, math.ceil(until - clock()))


def sign_in_failed(*, username: str, address: str) -> None:
    """Count a failed sign-in of the name from the address; the limit-th failure starts the cool-down."""
    window, cooldown = settings.LOMAS_SIGN_IN_FAILURE_WINDOW, settings.LOMAS_SIGN_IN_COOLDOWN
    for key in _sign_in_keys(username=username, address=address):
        cache.add(key, 0, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # the window ended between add() and incr()
            cache.add(key, 1, timeout=window)
            count = 1
        if count >= settings.LOMAS_SIGN_IN_FAILURE_LIMIT:
            cache.set(f"{key}:until", clock() + cooldown, timeout=cooldown)
            cache.delete(key)


def sign_in_attempt(
    request: HttpRequest,
    attempt: Callable[[], HttpResponse],
    *,
    succeeded: Callable[[HttpResponse], bool],
    refused: Callable[[str], HttpResponse],
) -> HttpResponse:
    """Run a sign-in attempt unless its name or address cools down (then `refused(message)`, 429), counting failures."""
    username, address = str(request.POST.get("username", "")), client_address(request)
    retry_after = sign_in_retry_after(username=username, address=address)
    if retry_after:
        response = refused(SIGN_IN_THROTTLED.format(retry=retry_after))
        response.status_code = 429
        response["Retry-After"] = str(retry_after)
        return response
    response = attempt()
    if not succeeded(response):
        sign_in_failed(username=username, address=address)
    return response
