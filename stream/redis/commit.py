"""The atomic write of one micro-batch: per partition, its session states (with their offsets), online counters and lesson.

One Lua script per partition of the clicks topic present in the batch, in that
partition's slot (stream.redis.keys), so a state and the offset of the click
that produced it are written together or not at all (DESIGN rule 2), the
counters of the clicks that produced them with them (accuracy, and the latency
histogram of their recommendations), and their lesson for the item neighbours
(appended to the partition's learning feed, which every worker reads). The
partitions' scripts run side by side. Each carries its worker's id and the
batch's sequence number; a script whose number the worker already committed
for that partition (a client retry after a timeout, or the whole batch again
after another partition's script failed) changes nothing, so counters and
lessons are exactly-once as states are. Kafka offsets are committed only after
every script: a batch that a worker's crash cut short comes again, and the
offset guard skips the clicks of the partitions it wrote (their counters and
lessons landed with their states).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis

from sessionrec.stream.redis.connection import RedisForgot, text
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.latency import Latency
from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.redis.sessions import SessionState

# KEYS: session keys..., metrics total, metrics bucket, the committer's sequence key, the learning feed, the partition's
# mark, its copy of the epoch. ARGV: ttl, bucket ttl, sequence number, sequence ttl, feed length, lesson (or ""), epoch,
# mark (or ""), the state blobs concatenated, their lengths (comma-separated), then (name, value) pairs of counters.
# One argument for all blobs keeps the client's per-argument packing off the hot path.
_COMMIT = """
local ttl, bucket_ttl, seq, seq_ttl, feed_len, lesson, epoch, mark, blobs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8], ARGV[9]
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
if #mark > 0 then redis.call('SET', KEYS[sessions + 5], mark) end
return i
"""
SEQUENCE_TTL_S = 7 * 86400  # a committer's last sequence number outlives any retry by far


@dataclass
class Share:
    """One partition's part of a micro-batch: what its script writes in the partition's slot."""

    states: dict[str, SessionState] = field(default_factory=dict)  # of the sessions whose clicks came from the partition
    counts: Counts = field(default_factory=Counts)  # of those clicks (and of the partition's dead letters)
    lesson: bytes = b""  # what they teach the item neighbours (empty: nothing, or learning is off)
    mark: str = ""  # the partition's last record in the batch (Record.mark), so that a log that starts over can be told from one read again


class BatchCommit:
    """Writes micro-batches for one committer (a worker process), numbering them in commit order.

    A commit made for an epoch Redis no longer has raises RedisForgot, after
    the partitions that still hold it are written: its states and indices
    belong to data that is gone. A partition's slot that alone forgot (a
    cluster node restarted empty) gets its copy of the epoch back and is
    written: the vocabulary its indices belong to is still there.
    """

    def __init__(self, redis: Redis, keys: Keys, metrics: OnlineMetrics, state_ttl_s: int, feed_len: int, committer: str) -> None:
        self.redis = redis
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

    async def __call__(self, number: int, epoch: str, shares: Mapping[int, Share], latency: Mapping[int, Latency]) -> bool:
        """Write batch ``number``'s shares (partition -> share), with each partition's latency histogram; False when all had been written before.

        The partitions' scripts run side by side: each stands alone, and a
        retry of the batch rewrites none that landed.
        """
        done = await asyncio.gather(*(self._share(number, epoch, p, share, latency.get(p, Latency())) for p, share in shares.items()))
        forgot = [p for p, answer in zip(shares, done) if answer == -2]
        if forgot:
            raise RedisForgot(f"Redis at {self.keys.prefix} lost the data this worker seeded (the epoch is gone; partitions {forgot})")
        return any(answer >= 0 for answer in done)

    async def _share(self, number: int, epoch: str, partition: int, share: Share, latency: Latency) -> int:
        done = await self._write(number, epoch, partition, share, latency)
        if done == -2 and await self._restored(partition, epoch):
            done = await self._write(number, epoch, partition, share, latency)
        return done

    async def _write(self, number: int, epoch: str, partition: int, share: Share, latency: Latency) -> int:
        """The script's answer: states written, -1 (written before) or -2 (the slot holds another epoch or none)."""
        blobs = [state.encode() for state in share.states.values()]
        keys = [self.keys.session(s, partition) for s in share.states] + self.metrics.counter_keys(time.time(), partition) + [
            self.keys.committed(self.committer, partition), self.keys.learning_feed(partition), self.keys.mark(partition), self.keys.epoch_copy(partition)]
        args: list[bytes | str | int] = [self.state_ttl_s, self.metrics.bucket_ttl_s, number, SEQUENCE_TTL_S, self.feed_len, share.lesson, epoch,
                                         share.mark, b"".join(blobs), ",".join(str(len(b)) for b in blobs)]
        for name, value in [*vars(share.counts).items(), *latency.fields().items()]:
            if value:
                args += [name, value]
        return int(await self._script(keys=keys, args=args))

    async def _restored(self, partition: int, epoch: str) -> bool:
        """Give ``partition``'s slot its copy of the epoch again, if the global one is still ``epoch`` (only that slot forgot)."""
        if text(await self.redis.get(self.keys.epoch)) != epoch:
            return False
        await self.redis.set(self.keys.epoch_copy(partition), epoch, nx=True)  # a worker seeding a new epoch meanwhile has set its own
        return True
