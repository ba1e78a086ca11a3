"""What one click costs the machines under it: worker CPU, Redis commands, bytes and memory, broker bytes.

`bench stream` measures these over its throughput phase, so the README's
sizing for more than one machine ("Beyond one machine") is arithmetic on
figures measured in the same run as the throughput, not guesses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys, partition_of


@dataclass(frozen=True)
class RedisCounters:
    commands: int  # processed since the server started (a script's inner calls included)
    net_bytes: int  # in and out
    used_memory: int
    cpu_s: float  # the server's user + system CPU time

    @classmethod
    async def read(cls, redis: Redis) -> RedisCounters:
        info = await redis.info()
        return cls(int(info["total_commands_processed"]), int(info["total_net_input_bytes"]) + int(info["total_net_output_bytes"]),
                   int(info["used_memory"]), float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))


def cpu_seconds(pids: Iterable[int]) -> float | None:
    """User + system CPU time of the processes so far (Linux /proc); None where it cannot be read."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14 and 15)
    return total


async def session_key_bytes(redis: Redis, keys: Keys, sessions: Sequence[str]) -> float:
    """Mean memory of a session's key (MEMORY USAGE: value, key and Redis' own overhead) over ``sessions``."""
    sizes = [size for size in [await redis.memory_usage(keys.session(s, partition_of(s, keys.partitions))) for s in sessions] if size is not None]
    return sum(sizes) / len(sizes) if sizes else 0.0


@dataclass(frozen=True)
class Sizing:
    clicks: int
    worker_cpu_s: float | None  # all workers, over the clicks
    redis_cpu_s: float
    redis_commands_per_click: float
    redis_net_bytes_per_click: float
    redis_memory_per_session: float  # a session key's MEMORY USAGE, mean of a sample
    broker_bytes_per_click: float  # the click's record and its recommendation's (key + value), before Kafka's batch framing

    @property
    def clicks_per_worker_core_s(self) -> float | None:
        """What one core of worker CPU serves: the figure to size workers by."""
        return self.clicks / self.worker_cpu_s if self.worker_cpu_s else None

    @property
    def clicks_per_redis_core_s(self) -> float | None:
        """What one core of Redis serves (Redis runs commands on one thread: a shard's ceiling)."""
        return self.clicks / self.redis_cpu_s if self.redis_cpu_s > 0 else None

    @classmethod
    def of(cls, clicks: int, cpu_s: float | None, before: RedisCounters, after: RedisCounters, session_bytes: float,
           record_bytes: float) -> Sizing:
        return cls(clicks, cpu_s, after.cpu_s - before.cpu_s, (after.commands - before.commands) / clicks,
                   (after.net_bytes - before.net_bytes) / clicks, session_bytes, record_bytes / clicks)
