"""What Redis knows of each partition of the clicks topic: its last applied record, and which log that was.

Offsets only mean something within one log. A topic that is recreated, or a
broker that restarts with an empty log, starts its offsets over, and every
click would then look already applied to the offset guard. Each commit
records the last applied record of each partition (offset, timestamp and a
checksum of its value); a worker that takes over a partition reads that
record back from Kafka. If it is not there, or is another record, the log
started over: the partition's incarnation grows by one, and states of the
old incarnation no longer count its clicks as seen (stream.worker.ingress).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys


@dataclass(frozen=True)
class Mark:
    offset: int
    timestamp_ms: int
    crc: int

    @classmethod
    def parse(cls, text: str) -> Mark:
        offset, timestamp_ms, crc = (int(part) for part in text.split(","))
        return cls(offset, timestamp_ms, crc)


class PartitionLog:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def mark(self, partition: int) -> Mark | None:
        """The last applied record of ``partition`` (None before any, or when the value is unreadable)."""
        raw = await self.redis.get(self.keys.mark(partition))
        try:
            return Mark.parse(raw.decode()) if raw else None
        except ValueError:
            return None

    async def incarnation(self, partition: int) -> int:
        raw = await self.redis.get(self.keys.incarnation(partition))
        return int(raw) if raw else 0

    async def start_over(self, partition: int) -> int:
        """A new log for ``partition``: its next incarnation, and no last record yet (one transaction in the partition's slot)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.keys.incarnation(partition))
            pipe.delete(self.keys.mark(partition))
            incarnation, _ = await pipe.execute()
        return int(incarnation)
