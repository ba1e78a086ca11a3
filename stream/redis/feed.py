"""The learning feeds: what each committed micro-batch teaches the item neighbours, for every worker to learn.

Each partition of the clicks topic has a feed in its own slot, appended by the
batch commit of that partition's clicks (stream.redis.commit) and bounded by
an approximate length; a worker reads every feed in order, from the start when
it starts, so every worker learns every lesson once. One XREAD may not span
slots on a cluster, so the feeds are read in one pipeline, without blocking,
and an idle read waits before it answers nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from redis.asyncio import Redis

from sessionrec.stream.redis.connection import text
from sessionrec.stream.redis.keys import Keys

BEGINNING = "0-0"


class LearningFeed:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def read(self, after: Mapping[int, str], *, count: int = 100, block_ms: int | None = 200) -> list[tuple[int, str, bytes]]:
        """Lessons after entry ``after[partition]`` of each partition's feed (the beginning where not given), as (partition, entry id, lesson).

        Oldest first within a feed; with none, it waits ``block_ms`` (None: not at all) before it answers.
        """
        partitions = self.keys.every_partition()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.xread({self.keys.learning_feed(partition): after.get(partition, BEGINNING)}, count=count)
            found = await pipe.execute()
        lessons = [(partition, text(entry), fields[b"l"])
                   for partition, streams in zip(partitions, found) for entry, fields in (streams[0][1] if streams else [])]
        if not lessons and block_ms:
            await asyncio.sleep(block_ms / 1000)
        return lessons
