"""The atomic write of one micro-batch: its session states (with their offsets), the online counters, what it teaches.

One Lua script, so a state and the offset of the click that produced it are
written together or not at all (DESIGN rule 2), the counters of the clicks that
produced them with them (accuracy, and the latency histogram of their
recommendations), and the batch's lesson for the item neighbours
(appended to the learning feed, which every worker reads). Each commit carries
its worker's id and sequence number; a commit whose number the worker already
committed (a client retry after a timeout, when the first attempt had landed)
changes nothing, so counters and lessons are exactly-once as states are.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from sessionrec.stream.redis.connection import RedisForgot
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.latency import Latency
from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.redis.sessions import SessionState

# KEYS: session keys..., metrics total, metrics bucket, the committer's sequence key, the learning feed, the partition
# marks, the epoch. ARGV: ttl, bucket ttl, sequence number, sequence ttl, feed length, lesson (or ""), epoch, marks
# ("partition=mark;..."), the state blobs concatenated, their lengths (comma-separated), then (name, value) pairs of
# counters. One argument for all blobs keeps the client's per-argument packing off the hot path.
_COMMIT = """
local ttl, bucket_ttl, seq, seq_ttl, feed_len, lesson, epoch, blobs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[9]
local sessions = #KEYS - 6
if redis.call('GET', KEYS[sessions + 6]) ~= epoch then return -2 end
local done = tonumber(redis.call('GET', KEYS[sessions + 3]) or '-1')
if seq <= done then return -1 end
redis.call('SET', KEYS[sessions + 3], seq, 'EX', seq_ttl)
local at, i = 1, 0
for length in string.gmatch(ARGV[10], '%d+') do
  i = i + 1
  local stop = at + tonumber(length)
  redis.call('SET', KEYS[i], string.sub(blobs, at, stop - 1), 'EX', ttl)
  at = stop
end
for j = 11, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[sessions + 1], ARGV[j], ARGV[j + 1])
  redis.call('HINCRBY', KEYS[sessions + 2], ARGV[j], ARGV[j + 1])
end
if #ARGV > 10 then redis.call('EXPIRE', KEYS[sessions + 2], bucket_ttl) end
if #lesson > 0 then redis.call('XADD', KEYS[sessions + 4], 'MAXLEN', '~', feed_len, '*', 'l', lesson) end
for partition, mark in string.gmatch(ARGV[8], '(%d+)=([^;]+)') do redis.call('HSET', KEYS[sessions + 5], partition, mark) end
return i
"""
SEQUENCE_TTL_S = 7 * 86400  # a committer's last sequence number outlives any retry by far


class BatchCommit:
    """Writes micro-batches for one committer (a worker process), numbering them in commit order.

    A commit made for an epoch Redis no longer has raises RedisForgot and writes
    nothing: its states and indices belong to data that is gone.
    """

    def __init__(self, redis: Redis, keys: Keys, metrics: OnlineMetrics, state_ttl_s: int, feed_len: int, committer: str) -> None:
        self.keys = keys
        self.metrics = metrics
        self.state_ttl_s = state_ttl_s
        self.feed_len = feed_len
        self.committer = committer
        self.sequence = 0
        self._script = redis.register_script(_COMMIT)

    def next_number(self) -> int:
        """The number of the next batch to commit: take it once per batch, retry with the same one."""
        self.sequence += 1
        return self.sequence

    async def __call__(self, number: int, epoch: str, states: dict[str, SessionState], counts: Counts, latency: Latency, lesson: bytes = b"",
                       marks: dict[int, str] | None = None) -> bool:
        """Write one batch; False when this committer's batch ``number`` had been written before (nothing changes then).

        ``marks``: each partition's last applied record (Record.mark), so that a
        log that starts over can be told from one that is read again.
        """
        blobs = [state.encode() for state in states.values()]
        keys = [self.keys.session(s) for s in states] + self.metrics.counter_keys(time.time()) + [
            self.keys.committed(self.committer), self.keys.learning_feed, self.keys.partition_marks, self.keys.epoch]
        args: list[bytes | str | int] = [self.state_ttl_s, self.metrics.bucket_ttl_s, number, SEQUENCE_TTL_S, self.feed_len, lesson, epoch,
                                         ";".join(f"{p}={m}" for p, m in (marks or {}).items()), b"".join(blobs), ",".join(str(len(b)) for b in blobs)]
        for name, value in [*vars(counts).items(), *latency.fields().items()]:
            if value:
                args += [name, value]
        done = int(await self._script(keys=keys, args=args))
        if done == -2:
            raise RedisForgot(f"Redis at {self.keys.prefix} lost the data this worker seeded (the epoch is gone)")
        return done >= 0
