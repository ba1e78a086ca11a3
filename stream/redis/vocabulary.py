"""The shared item vocabulary: every worker agrees on every item's index.

Indices are assigned in Redis by one Lua script, so the first worker to see an
item fixes its index atomically. It is append-only: the model's own
vocabulary is its first ``n`` entries (seeded from the checkpoint), which keeps
a model valid while the live vocabulary grows. Each worker caches what it has
looked up; an assigned index never changes, so the cache never goes stale.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from sessionrec.model.errors import DataError
from sessionrec.stream.redis.connection import RedisForgot, text
from sessionrec.stream.redis.keys import Keys

# KEYS: index hash, items list, epoch. ARGV: the epoch the caller holds ("" while seeding), then raw ids.
# Returns their indices, adding unseen ones; an error when the caller's epoch is not Redis's.
_ASSIGN = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return redis.error_reply('EPOCH') end
local out = {}
for i = 2, #ARGV do
  local item = ARGV[i]
  local idx = redis.call('HGET', KEYS[1], item)
  if not idx then
    idx = redis.call('RPUSH', KEYS[2], item) - 1
    redis.call('HSET', KEYS[1], item, idx)
  end
  out[i - 1] = tonumber(idx)
end
return out
"""

# KEYS: items list, epoch. ARGV: the epoch the caller holds, then indices. Their raw ids; an error when the epoch is not Redis's.
_NAMES = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('EPOCH') end
local out = {}
for i = 2, #ARGV do out[i - 1] = redis.call('LINDEX', KEYS[1], tonumber(ARGV[i])) end
return out
"""


class VocabularyMismatch(DataError):
    """The model's items are not the first entries of the live vocabulary."""


class SharedVocabulary:
    """The vocabulary in Redis, cached; it belongs to an epoch (stream.redis.keys: epoch), which its cache is valid for.

    Redis that lost its data has no epoch, or another one: every assignment then
    fails with RedisForgot, so no index of the old vocabulary is ever written
    into the new one, and the worker seeds it again (stream.worker.serving).
    """

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.epoch: str | None = None  # of the vocabulary this cache holds
        self._assign = redis.register_script(_ASSIGN)
        self._names = redis.register_script(_NAMES)
        self._index: dict[str, int] = {}
        self._items: dict[int, str] = {}

    def forget(self) -> None:
        """Drop the cache and the epoch: what Redis holds now is another vocabulary."""
        self.epoch = None
        self._index, self._items = {}, {}

    async def is_current(self) -> bool:
        """Whether Redis still holds the epoch this cache belongs to."""
        epoch = text(await self.redis.get(self.keys.epoch))
        return epoch is not None and self.epoch == epoch

    async def adopt(self) -> str:
        """Take the epoch Redis has now (after forget()); RedisForgot while nobody has seeded it yet."""
        epoch = text(await self.redis.get(self.keys.epoch))
        if epoch is None:
            raise RedisForgot(f"the vocabulary at {self.keys.prefix} is not seeded yet")
        self.epoch = epoch
        return epoch

    async def seeded(self) -> str:
        """Mark the vocabulary (and registry) seeded, unless someone did: the epoch every cache then belongs to.

        Every partition's slot gets a copy of it, what the batch commit checks
        (stream.redis.commit): copies of an epoch that is gone are overwritten.
        """
        await self.redis.set(self.keys.epoch, uuid.uuid4().hex, nx=True)
        epoch = await self.adopt()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in self.keys.every_partition():
                pipe.set(self.keys.epoch_copy(partition), epoch)
            await pipe.execute()
        return epoch

    async def seed(self, items: Sequence[str], chunk: int = 5000) -> None:
        """Make ``items`` the vocabulary's first entries (fine if they already are), then mark it seeded."""
        for start in range(0, len(items), chunk):
            await self._indices(items[start : start + chunk], seeding=True)
        wrong = [(i, raw) for i, raw in enumerate(items) if self._index[raw] != i]
        if wrong:
            i, raw = wrong[0]
            raise VocabularyMismatch(
                f"item {raw!r} is index {self._index[raw]} in the live vocabulary at {self.keys.vocab_items} but {i} in the model; "
                "the live vocabulary was built for another model (use another --redis-prefix or clear it)"
            )
        await self.seeded()

    async def indices(self, raws: Sequence[str]) -> list[int]:
        """The index of every raw id, assigning new ones (in the epoch this cache holds: RedisForgot if Redis has another)."""
        return await self._indices(raws, seeding=False)

    async def _indices(self, raws: Sequence[str], seeding: bool) -> list[int]:
        missing = list(dict.fromkeys(r for r in raws if r not in self._index))
        if missing:
            if not seeding and self.epoch is None:
                await self.adopt()
            assigned = await self._in_epoch(self._assign, [self.keys.vocab_index, self.keys.vocab_items, self.keys.epoch],
                                            ["" if seeding else self.epoch, *missing])
            for raw, index in zip(missing, assigned):
                self._index[raw] = int(index)
                self._items[int(index)] = raw
        return [self._index[r] for r in raws]

    async def _in_epoch(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> list:
        try:
            return await script(keys=keys, args=args)
        except ResponseError as exc:
            if str(exc).startswith("EPOCH"):
                raise RedisForgot(f"the vocabulary at {self.keys.prefix} is not the one this process cached (Redis lost its data?)") from None
            raise

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
        """The raw ids (text) of ``indices``: what every message and answer names items by.

        Names come from the epoch the indices were assigned in: a Redis that
        lost its data and was seeded again may hold another item at an index.
        """
        missing = sorted({i for i in indices if i not in self._items})
        if missing:
            if self.epoch is None:
                await self.adopt()
            found = await self._in_epoch(self._names, [self.keys.vocab_items, self.keys.epoch], [self.epoch, *missing])
            if any(raw is None for raw in found):
                raise RedisForgot(f"the vocabulary at {self.keys.prefix} lacks indices this process holds (Redis lost its data?)")
            for index, raw in zip(missing, map(text, found)):
                self._items[index] = raw
                self._index[raw] = index
        return [self._items[i] for i in indices]

    async def size(self) -> int:
        return int(await self.redis.llen(self.keys.vocab_items))

    async def all_items(self) -> list[str]:
        raw = await self.redis.lrange(self.keys.vocab_items, 0, -1)
        return [text(r) for r in raw]
