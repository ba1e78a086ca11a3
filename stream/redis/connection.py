"""Connecting to Redis: a client that answered, or one readable line saying why not; and noticing that it forgot."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from sessionrec.stream.settings import Settings


class RedisForgot(Exception):
    """Redis no longer holds what this process seeded it with (a restart without persistence, FLUSHDB, a failover)."""


async def connect(settings: Settings) -> Redis:
    """A Redis client that answered a PING, or a one-line ConnectionError."""
    redis = Redis.from_url(settings.redis_url, **settings.redis_kwargs())
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        await redis.aclose()
        raise ConnectionError(f"cannot reach Redis at {settings.redis_shown}: {exc}") from None
    return redis
