"""The learning feed: what each committed micro-batch teaches the item neighbours, for every worker to learn.

Entries are appended by the batch commit (stream.redis.commit) and bounded by
an approximate length; a worker reads them in order, from the start when it
starts, so every worker learns every lesson once.
"""

from __future__ import annotations

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys

BEGINNING = "0-0"


class LearningFeed:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def read(self, after: str, *, count: int = 100, block_ms: int | None = 200) -> list[tuple[str, bytes]]:
        """Lessons after entry ``after`` (waiting up to ``block_ms`` for one; None: not at all), oldest first, as (entry id, lesson)."""
        found = await self.redis.xread({self.keys.learning_feed: after}, count=count, block=block_ms)
        entries = found[0][1] if found else []
        return [(entry.decode() if isinstance(entry, bytes) else entry, fields[b"l"]) for entry, fields in entries]
