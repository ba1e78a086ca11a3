"""The atomic write of one micro-batch: its session states (with their offsets) and the online counters.

One Lua script, so a state and the offset of the click that produced it are
written together or not at all (DESIGN rule 2), and the counters of the
clicks that produced them with them.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.redis.sessions import SessionState

# KEYS: session keys..., metrics total, metrics bucket. ARGV: ttl, bucket ttl, the state blobs
# concatenated, their lengths (comma-separated), then (name, value) pairs of counters.
# One argument for all blobs keeps the client's per-argument packing off the hot path.
_COMMIT = """
local ttl, bucket_ttl, blobs = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local sessions = #KEYS - 2
local at, i = 1, 0
for length in string.gmatch(ARGV[4], '%d+') do
  i = i + 1
  local stop = at + tonumber(length)
  redis.call('SET', KEYS[i], string.sub(blobs, at, stop - 1), 'EX', ttl)
  at = stop
end
for j = 5, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[sessions + 1], ARGV[j], ARGV[j + 1])
  redis.call('HINCRBY', KEYS[sessions + 2], ARGV[j], ARGV[j + 1])
end
if #ARGV > 4 then redis.call('EXPIRE', KEYS[sessions + 2], bucket_ttl) end
return i
"""


class BatchCommit:
    def __init__(self, redis: Redis, keys: Keys, metrics: OnlineMetrics, state_ttl_s: int) -> None:
        self.keys = keys
        self.metrics = metrics
        self.state_ttl_s = state_ttl_s
        self._script = redis.register_script(_COMMIT)

    async def __call__(self, states: dict[str, SessionState], counts: Counts) -> None:
        blobs = [state.encode() for state in states.values()]
        keys = [self.keys.session(s) for s in states] + self.metrics.counter_keys(time.time())
        args: list[bytes | str | int] = [self.state_ttl_s, self.metrics.bucket_ttl_s, b"".join(blobs), ",".join(str(len(b)) for b in blobs)]
        for name, value in vars(counts).items():
            if value:
                args += [name, value]
        await self._script(keys=keys, args=args)
