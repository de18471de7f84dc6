"""A job's memory limit: its DP library work may grow its process by at most LOMAS_JOB_MEMORY_MB.

Enforced with RLIMIT_AS in the process running the job (a Celery prefork child): while the
work runs, the process's address space may not exceed what it held as the work started plus
the allowance. An allocation past it fails: a MemoryError in Python and numpy, which the job
runner turns into JobMemoryExceeded; a library that aborts on a failed allocation kills its
pool process, and its job fails as one whose worker was lost.
"""

import resource
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from lomas.errors import InvalidQuery

MEMORY_LIMIT_EXCEEDED = (
    "The job exceeded the memory limit of {megabytes} MiB and was stopped; {charge}. "
    "Ask for less work (fewer rows, samples, groups or parameters)."
)
MIB = 1024**2


class JobMemoryExceeded(InvalidQuery):
    """The error of a job that needed more memory than the server allows (400).

    `charged`: the limit struck while the job ran on the private data, so its cost was charged.
    """

    def __init__(self, *, charged: bool = False) -> None:
        charge = "its cost was charged, as it had read the private data" if charged else "nothing was charged"
        super().__init__(MEMORY_LIMIT_EXCEEDED.format(megabytes=settings.LOMAS_JOB_MEMORY_MB, charge=charge))


def _address_space() -> int:
    """The bytes of address space this process holds now."""
    return int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()


@contextmanager
def job_memory_limit() -> Iterator[None]:
    """Let the block grow the process's address space by at most LOMAS_JOB_MEMORY_MB (0: no limit).

    Only in the main thread: the limit holds for the whole process, and a thread of a web
    process running jobs eagerly (tests) must not limit its neighbours.
    """
    allowance = settings.LOMAS_JOB_MEMORY_MB * MIB
    if not allowance or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = resource.getrlimit(resource.RLIMIT_AS)
    soft = _address_space() + allowance
    if previous[1] != resource.RLIM_INFINITY:
        soft = min(soft, previous[1])
    resource.setrlimit(resource.RLIMIT_AS, (soft, previous[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, previous)
