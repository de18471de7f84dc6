"""Wake-ups across processes: the worker that ends a job wakes the status request waiting for it.

With a Redis cache (LOMAS_CACHE_URL, by default the Redis broker) a wake-up is a token pushed
to a short-lived Redis list, and a waiter blocks on that list (BLPOP) instead of sleeping;
without one (the embedded broker, tests) waiting is sleeping. A wake-up only says "look now":
the waiter re-reads what it waits for, and a lost wake-up costs no more than the sleep it cut.
"""

import functools
import logging
import time

import redis
from django.conf import settings

logger = logging.getLogger("lomas")

# A token nobody took is dropped after this many seconds.
TOKEN_SECONDS = 60


@functools.cache
def _client(url: str) -> redis.Redis | None:
    return redis.Redis.from_url(url, socket_connect_timeout=2) if url else None


def _key(name: str) -> str:
    return f"lomas:wake:{name}"  # names are unique (job uids): deployments sharing a Redis never meet


def connect() -> None:
    """Open this process's connection to Redis now (a worker process does it as it starts), so that its
    first wake-up does not wait for it."""
    client = _client(settings.LOMAS_CACHE_URL)
    if client is None:
        return
    try:
        client.ping()
    except redis.RedisError as exc:
        logger.warning("wake-ups: Redis not reachable yet: %s", exc)


def wake(name: str) -> None:
    """Wake one process waiting for `name` (or the next one that waits within TOKEN_SECONDS)."""
    client = _client(settings.LOMAS_CACHE_URL)
    if client is None:
        return
    try:
        client.pipeline().rpush(_key(name), 1).expire(_key(name), TOKEN_SECONDS).execute()
    except redis.RedisError as exc:
        logger.warning("wake-up %s not sent: %s", name, exc)


def wait(name: str, *, timeout: float) -> bool:
    """Wait up to `timeout` seconds for a wake-up of `name`; whether one came (False without Redis)."""
    client = _client(settings.LOMAS_CACHE_URL)
    if client is not None:
        try:
            return client.blpop([_key(name)], timeout=timeout) is not None
        except redis.RedisError as exc:
            logger.warning("wake-up %s not awaited: %s", name, exc)
    time.sleep(timeout)
    return False
