"""The trainer's record of its cycles, newest first, bounded: what `sessionrec cycles` reads."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys


class CycleLog:
    def __init__(self, redis: Redis, keys: Keys, keep: int = 500) -> None:
        self.redis = redis
        self.keys = keys
        self.keep = keep

    async def append(self, record: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.keys.trainer_cycles, json.dumps(record))
            pipe.ltrim(self.keys.trainer_cycles, 0, self.keep - 1)
            await pipe.execute()

    async def recent(self, count: int) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.redis.lrange(self.keys.trainer_cycles, 0, count - 1)]
