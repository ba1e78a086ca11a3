"""The live item neighbours, kept current: every lesson on the learning feed, learned once, in order (per partition's feed).

The table starts as the one the served model was trained with, then learns
what every committed micro-batch teaches, this worker's and every other's
(stream.redis.feed), so all workers (and the API) converge on the same
neighbours within moments of a commit. A lesson that cannot be read is
skipped and logged (DESIGN rule 8).
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from sessionrec.model.neighbours import Increments, NeighbourTable
from sessionrec.stream.redis.feed import LearningFeed

log = logging.getLogger(__name__)


class NeighbourLearner:
    def __init__(self, table: NeighbourTable, feed: LearningFeed) -> None:
        self.table = table
        self.feed = feed
        self.after: dict[int, str] = {}  # per partition's feed: the last entry learned
        self.learned = 0  # lessons learned

    async def catch_up(self, block_ms: int | None = 200) -> int:
        """Learn what the feeds hold after the last entries learned (waiting ``block_ms`` when none); how many lessons."""
        entries = await self.feed.read(self.after, block_ms=block_ms)
        for partition, entry, lesson in entries:
            try:
                self.table.learn(Increments.from_bytes(lesson))
            except ValueError as exc:
                log.warning("skipped an unreadable lesson %s on the learning feed: %s", entry, exc)
            self.after[partition] = entry
        self.learned += len(entries)
        return len(entries)

    async def catch_up_all(self) -> None:
        """Learn everything the feed holds now."""
        while await self.catch_up(block_ms=None):
            pass

    def restart(self, table: NeighbourTable) -> None:
        """Learn into ``table`` from the feed's beginning (Redis lost its data: the feed is a new one)."""
        self.table, self.after = table, {}

    async def follow(self) -> None:
        """Learn every lesson as it arrives, until cancelled; a Redis outage is waited out."""
        delay = 0.5
        while True:
            try:
                await self.catch_up()
                delay = 0.5
            except (RedisError, OSError) as exc:
                log.warning("reading the learning feed failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
