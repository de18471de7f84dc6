"""Timing protection: how long the server takes to answer must not tell what the private data holds.

LOMAS_TIME_ATTACK_METHOD chooses the protection of DP submissions and of job results
(a status answer carrying a complete or failed job), LOMAS_TIME_ATTACK_MAGNITUDE its N seconds:

* ``stall``: a submission is answered no sooner than N s after it arrived, and a job's result
  no sooner than N s after the job was submitted;
* ``jitter``: the answer waits a further uniform random 0..N s (it averages out over repeats);
* ``tick``: the answer leaves only on a boundary: a submission at a multiple of N s since the
  epoch, a result at a whole number of N s after its job was submitted;
* empty: no protection.

A result is measured from the job's submission, not from the status request: the status
route waits for a running job (long polling), so the answer to one poll would otherwise
tell when the job finished.
"""

import math
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum

from django.conf import settings

# Randomness for jitter that a client cannot predict from earlier answers.
_RANDOM = secrets.SystemRandom()


class TimeAttackMethod(StrEnum):
    """The protections a deployment may choose."""

    NONE = ""
    STALL = "stall"
    JITTER = "jitter"
    TICK = "tick"


def _method_and_magnitude() -> tuple[TimeAttackMethod, float]:
    return TimeAttackMethod(settings.LOMAS_TIME_ATTACK_METHOD), float(settings.LOMAS_TIME_ATTACK_MAGNITUDE)


def _sleep_until_wall(instant: float) -> None:
    remaining = instant - time.time()
    if remaining > 0:
        time.sleep(remaining)


def _pad(*, started: float, tick_release: Callable[[float], float]) -> None:
    """Sleep as the method asks; `started` (wall clock) is what a stall counts from.

    `tick_release` maps the magnitude to the wall-clock instant of the next allowed release.
    """
    method, magnitude = _method_and_magnitude()
    if method is TimeAttackMethod.NONE or magnitude <= 0:
        return
    if method is TimeAttackMethod.STALL:
        _sleep_until_wall(started + magnitude)
    elif method is TimeAttackMethod.JITTER:
        time.sleep(_RANDOM.uniform(0, magnitude))
    else:
        _sleep_until_wall(tick_release(magnitude))


def next_boundary(*, now: float, origin: float, period: float) -> float:
    """The first instant at or after `now` that is `origin` plus a whole, positive number of periods."""
    periods = max(1, math.ceil((now - origin) / period))
    return origin + periods * period


@contextmanager
def submission_timing() -> Iterator[None]:
    """Around the handling of a DP submission; pads its answer, error answers included."""
    started = time.time()
    try:
        yield
    finally:
        _pad(started=started, tick_release=lambda period: next_boundary(now=time.time(), origin=0.0, period=period))


def pad_result(*, submitted_at: datetime, finished_at: datetime | None) -> None:
    """Before a status answer that carries a job's outcome.

    In tick mode the release is the first whole number of ticks after the job's submission at
    which the job had finished: it depends only on how many ticks the job took.
    """
    done = finished_at.timestamp() if finished_at is not None else time.time()
    origin = submitted_at.timestamp()
    _pad(started=origin, tick_release=lambda period: next_boundary(now=done, origin=origin, period=period))
