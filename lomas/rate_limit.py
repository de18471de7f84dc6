"""Per-user submit limit (lomas server.submit_limit): DP submissions per user and time window.

Counts are fixed-window counters in the Django cache: atomic and shared by every web process
and host when the cache is Redis. A refused submission answers 429 in the lomas error shape
(UnauthorizedAccessException), which lomas-client raises with its message.
"""

import time

from django.conf import settings
from django.core.cache import cache

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
