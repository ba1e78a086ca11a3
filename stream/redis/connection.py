"""Connecting to Redis, one server or a cluster: a client that answered, or one readable line saying why not; and noticing that it forgot."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from sessionrec.stream.settings import Settings


def text(value: bytes | str | None) -> str | None:
    """A reply as text: the clients here answer bytes (no ``decode_responses``, since states and weights are binary)."""
    return value.decode() if isinstance(value, bytes) else value


class RedisForgot(Exception):
    """Redis no longer holds what this process seeded it with (a restart without persistence, FLUSHDB, a failover)."""


async def connect(settings: Settings) -> Redis:
    """A Redis client that answered a PING, or a one-line ConnectionError.

    With ``redis_cluster`` the URL names any node of a Redis Cluster, and the
    client follows the cluster's slots (every script and transaction of the
    project stays in one slot: stream.redis.keys).
    """
    kind = RedisCluster if settings.redis_cluster else Redis
    redis = kind.from_url(settings.redis_url, **settings.redis_kwargs())
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        await redis.aclose()
        raise ConnectionError(f"cannot reach Redis at {settings.redis_shown}: {exc}") from None
    return redis  # type: ignore[return-value]  # the cluster client answers the same commands, slot by slot
