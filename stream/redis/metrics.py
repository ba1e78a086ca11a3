"""Online accuracy, prequential (DESIGN rule 6), counted in Redis by all workers.

The list recommended after click t is scored against click t+1 before any
state learns from t+1. Counters are integers (reciprocal ranks in millionths)
so that increments from many workers add up exactly; they land in a running
total and in a per-time-bucket hash of the clicks' partition, in the same
atomic write as the session states they belong to (stream.redis.commit), and
readers add up every partition's. The same hashes hold the latency histogram
of stream.redis.latency; each reader takes the fields it knows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys

RR_SCALE = 1_000_000


def rank_in(previous: list[int], item: int) -> int | None:
    """Where ``item`` stands in the list recommended before it, from 1; None when it is not there."""
    try:
        return previous.index(item) + 1
    except ValueError:
        return None


@dataclass
class Counts:
    clicks: int = 0  # applied clicks
    scored: int = 0  # clicks that had a previous recommendation to score
    hit1: int = 0
    hit5: int = 0
    hit20: int = 0
    rr20: int = 0  # sum of 1/rank within the top 20, in millionths
    fresh: int = 0  # clicks that started a session state (new session or after a timeout)
    duplicates: int = 0  # redelivered clicks skipped
    recomputed: int = 0  # states rebuilt for a new model version
    dead_letters: int = 0
    unreadable: int = 0  # stored states that could not be read: those sessions started fresh

    def score(self, previous: list[int] | None, item: int) -> None:
        """Count click ``item`` against the list recommended before it (if any)."""
        if previous is not None:
            self.count(rank_in(previous, item))

    def count(self, rank: int | None) -> None:
        """Count one scored click whose item stood at ``rank`` of the list before it (None: not in it)."""
        self.scored += 1
        if rank is None:
            return
        self.hit1 += rank <= 1
        self.hit5 += rank <= 5
        self.hit20 += rank <= 20
        if rank <= 20:
            self.rr20 += round(RR_SCALE / rank)

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def rates(self) -> dict[str, float]:
        n = max(self.scored, 1)
        return {"hr@1": self.hit1 / n, "hr@5": self.hit5 / n, "hr@20": self.hit20 / n, "mrr@20": self.rr20 / RR_SCALE / n}

    @classmethod
    def from_redis(cls, raw: Mapping[bytes, bytes | int]) -> Counts:
        known = {f.name for f in fields(cls)}
        return cls(**{k.decode(): int(v) for k, v in raw.items() if k.decode() in known})


class OnlineMetrics:
    def __init__(self, redis: Redis, keys: Keys, bucket_s: int, bucket_ttl_s: int = 7 * 86400) -> None:
        self.redis = redis
        self.keys = keys
        self.bucket_s = bucket_s
        self.bucket_ttl_s = bucket_ttl_s

    def bucket(self, now: float) -> int:
        return int(now // self.bucket_s) * self.bucket_s

    def starts(self, since: float, until: float) -> range:
        """The start times of the buckets from ``since`` to ``until``."""
        return range(self.bucket(since), self.bucket(until) + 1, self.bucket_s)

    def counter_keys(self, now: float, partition: int) -> list[str]:
        """Where a commit at ``now`` adds the counts of ``partition``'s clicks: its running total and its current time bucket."""
        return [self.keys.metrics_total(partition), self.keys.metrics_bucket(self.bucket(now), partition)]

    async def total(self) -> Counts:
        return Counts.from_redis(await self.total_fields())

    async def total_fields(self) -> dict[bytes, int]:
        """The running totals as stored (counters and latency fields), every partition's added up."""
        return (await self._summed([self.keys.metrics_total]))[0]

    async def buckets(self, since: float, until: float) -> list[tuple[int, Counts]]:
        return [(start, Counts.from_redis(raw)) for start, raw in await self.hashes(since, until)]

    async def hashes(self, since: float, until: float) -> list[tuple[int, dict[bytes, int]]]:
        """Every time bucket from ``since`` to ``until`` as stored (counters and latency fields, every partition's added up), oldest first."""
        starts = self.starts(since, until)
        return list(zip(starts, await self._summed([lambda p, start=start: self.keys.metrics_bucket(start, p) for start in starts])))

    async def _summed(self, hashes: list[Callable[[int], str]]) -> list[dict[bytes, int]]:
        """Each hash (its key given a partition), its fields added up over every partition, in one round trip."""
        partitions = self.keys.every_partition()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in hashes:
                for partition in partitions:
                    pipe.hgetall(key(partition))
            found = await pipe.execute()
        sums = []
        for i in range(len(hashes)):
            total: Counter[bytes] = Counter()
            for raw in found[i * len(partitions) : (i + 1) * len(partitions)]:
                total.update({name: int(value) for name, value in raw.items()})
            sums.append(dict(total))
        return sums
