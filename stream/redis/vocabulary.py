"""The shared item vocabulary: every worker agrees on every item's index.

Indices are assigned in Redis by one Lua script, so the first worker to see an
item fixes its index atomically. It is append-only: the model's own
vocabulary is its first ``n`` entries (seeded from the checkpoint), which keeps
a model valid while the live vocabulary grows. Each worker caches what it has
looked up; an assigned index never changes, so the cache never goes stale.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys

# KEYS: index hash, items list. ARGV: raw ids. Returns their indices, adding unseen ones.
_ASSIGN = """
local out = {}
for i, item in ipairs(ARGV) do
  local idx = redis.call('HGET', KEYS[1], item)
  if not idx then
    idx = redis.call('RPUSH', KEYS[2], item) - 1
    redis.call('HSET', KEYS[1], item, idx)
  end
  out[i] = tonumber(idx)
end
return out
"""


class VocabularyMismatch(RuntimeError):
    """The model's items are not the first entries of the live vocabulary."""


class SharedVocabulary:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._assign = redis.register_script(_ASSIGN)
        self._index: dict[str, int] = {}
        self._items: dict[int, str] = {}

    async def seed(self, items: Sequence[str], chunk: int = 5000) -> None:
        """Make ``items`` the vocabulary's first entries; fine if they already are."""
        for start in range(0, len(items), chunk):
            await self.indices(items[start : start + chunk])
        wrong = [(i, raw) for i, raw in enumerate(items) if self._index[raw] != i]
        if wrong:
            i, raw = wrong[0]
            raise VocabularyMismatch(
                f"item {raw!r} is index {self._index[raw]} in the live vocabulary at {self.keys.vocab_items} but {i} in the model; "
                "the live vocabulary was built for another model (use another --redis-prefix or clear it)"
            )

    async def indices(self, raws: Sequence[str]) -> list[int]:
        missing = list(dict.fromkeys(r for r in raws if r not in self._index))
        if missing:
            assigned = await self._assign(keys=[self.keys.vocab_index, self.keys.vocab_items], args=missing)
            for raw, index in zip(missing, assigned):
                self._index[raw] = int(index)
                self._items[int(index)] = raw
        return [self._index[r] for r in raws]

    async def known(self, raws: Sequence[str]) -> list[int | None]:
        """The indices of ``raws`` where they have one (None where not), assigning none: for readers that must not grow the vocabulary."""
        missing = list(dict.fromkeys(r for r in raws if r not in self._index))
        if missing:
            for raw, index in zip(missing, await self.redis.hmget(self.keys.vocab_index, missing)):
                if index is not None:
                    self._index[raw] = int(index)
                    self._items[int(index)] = raw
        return [self._index.get(r) for r in raws]

    async def items(self, indices: Sequence[int]) -> list[str]:
        """The raw ids (text) of ``indices``: what every message and answer names items by."""
        missing = sorted({i for i in indices if i not in self._items})
        if missing:
            async with self.redis.pipeline(transaction=False) as pipe:
                for index in missing:
                    pipe.lindex(self.keys.vocab_items, index)
                found = await pipe.execute()
            for index, raw in zip(missing, found):
                raw = raw.decode() if isinstance(raw, bytes) else raw
                self._items[index] = raw
                self._index[raw] = index
        return [self._items[i] for i in indices]

    async def size(self) -> int:
        return int(await self.redis.llen(self.keys.vocab_items))

    async def all_items(self) -> list[str]:
        raw = await self.redis.lrange(self.keys.vocab_items, 0, -1)
        return [r.decode() if isinstance(r, bytes) else r for r in raw]
