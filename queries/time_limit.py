"""A job's time limit: its DP library work is interrupted after LOMAS_JOB_TIME_LIMIT seconds.

The limit is enforced in the process running the job (a Celery prefork child, or the
test process when jobs run eagerly) with a real-time interval timer, so it also holds
where Celery's own soft limit does not apply. The timer re-fires every second until
the work ends, so a library that swallows one exception is interrupted again.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from django.conf import settings

from lomas.errors import InvalidQuery

TIME_LIMIT_EXCEEDED = (
    "The job exceeded the time limit of {seconds} s and was stopped; {charge}. "
    "Ask for less work (fewer epochs, samples or columns)."
)
REFIRE_SECONDS = 1.0


class TimeLimitReached(BaseException):
    """Interrupts a job whose time is up.

    A BaseException, so that the `except Exception` of adapters and DP libraries lets it through.
    """


class JobTimeLimitExceeded(InvalidQuery):
    """The error of a job that ran longer than the server allows (400).

    `charged`: the limit struck while the job ran on the private data, so its cost was charged.
    """

    def __init__(self, *, charged: bool = False) -> None:
        charge = "its cost was charged, as it had read the private data" if charged else "nothing was charged"
        super().__init__(TIME_LIMIT_EXCEEDED.format(seconds=settings.LOMAS_JOB_TIME_LIMIT, charge=charge))


@contextmanager
def job_time_limit() -> Iterator[None]:
    """Raise TimeLimitReached in the block once it has run LOMAS_JOB_TIME_LIMIT seconds.

    Outside the main thread (signals are unavailable there) only Celery's soft limit,
    a backstop set a little later, applies. job_run turns both into JobTimeLimitExceeded.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeLimitReached

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, settings.LOMAS_JOB_TIME_LIMIT, REFIRE_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
