"""Who is serving: a heartbeat per worker with its partitions' lag, and the stream's lag per time bucket.

The dashboard reads Redis only, so each worker puts there what only it knows,
about once a second: its status (a key that expires unless renewed, indexed by
beat time in a sorted set) and its consumer lag in the current time bucket
(one hash field per worker, so a bucket's lag is the sum of every worker's
last report in it). Bounded: a silent worker leaves the index at the next
beat of any other, and lag buckets expire with the online counters.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import OnlineMetrics


class WorkerBeats:
    def __init__(self, redis: Redis, keys: Keys, metrics: OnlineMetrics, ttl_s: float = 10.0) -> None:
        self.redis = redis
        self.keys = keys
        self.metrics = metrics  # whose time buckets the lag shares
        self.ttl_s = ttl_s  # a worker silent this long is gone

    async def beat(self, worker: str, status: dict[str, Any], lag: int, now: float) -> None:
        """Say ``worker`` is alive with ``status`` (JSON-ready) and a consumer lag of ``lag`` records over its partitions."""
        lag_key = self.keys.lag_bucket(self.metrics.bucket(now))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.worker(worker), json.dumps({**status, "worker": worker, "at": now}), px=int(self.ttl_s * 1000))
            pipe.zadd(self.keys.workers, {worker: now})
            pipe.zremrangebyscore(self.keys.workers, "-inf", now - self.ttl_s)
            pipe.hset(lag_key, worker, lag)
            pipe.expire(lag_key, self.metrics.bucket_ttl_s)
            await pipe.execute()

    async def live(self, now: float) -> list[dict[str, Any]]:
        """The status of every worker heard from within the TTL, by worker id."""
        workers = await self.redis.zrangebyscore(self.keys.workers, now - self.ttl_s, "+inf")
        if not workers:
            return []
        found = await self.redis.mget([self.keys.worker(w.decode()) for w in workers])
        return sorted((json.loads(raw) for raw in found if raw is not None), key=lambda status: status["worker"])

    async def lag(self, since: float, until: float) -> list[tuple[int, int | None]]:
        """Per time bucket from ``since`` to ``until``: the summed lag the workers last reported in it (None: no report)."""
        starts = self.metrics.starts(since, until)
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hvals(self.keys.lag_bucket(start))
            found = await pipe.execute()
        return [(start, sum(int(v) for v in values) if values else None) for start, values in zip(starts, found)]
