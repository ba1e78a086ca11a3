"""The shared vocabulary against a real Redis that loses its data: a cache never names an item of another epoch."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from sessionrec.stream.redis.connection import RedisForgot
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.vocabulary import SharedVocabulary


def test_names_of_a_lost_epoch_are_refused_not_taken_from_the_new_one(redis_url):
    async def run() -> None:
        redis = Redis.from_url(redis_url)
        keys = Keys(f"vocab-{uuid.uuid4().hex[:8]}")
        before, after = SharedVocabulary(redis, keys), SharedVocabulary(redis, keys)
        try:
            await before.seed(["a", "b"])
            assert await before.indices(["new-1", "new-2"]) == [2, 3]
            await redis.delete(*await redis.keys(f"{{{keys.prefix}*"))  # Redis forgets; another worker seeds it again
            await after.seed(["a", "b"])
            assert await after.indices(["other"]) == [2]  # index 2 now names another item
            with pytest.raises(RedisForgot):
                await SharedVocabulary(redis, keys).items([3])  # an index nobody assigned in this epoch
            fresh = SharedVocabulary(redis, keys)
            await fresh.adopt()
            assert await fresh.items([0, 2]) == ["a", "other"]
            stale = SharedVocabulary(redis, keys)
            stale.epoch = before.epoch  # a cache of the lost epoch that never looked index 2 up
            with pytest.raises(RedisForgot):
                await stale.items([2])
        finally:
            await redis.aclose()

    asyncio.run(run())
