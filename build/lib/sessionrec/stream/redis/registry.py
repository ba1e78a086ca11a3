"""The model registry in Redis: promoted versions and a pointer to the current one.

A version is stored as its safetensors weights and JSON metadata (never a
pickle), as model.checkpoint.to_bytes makes them: the registry itself never
touches a network. Promotion writes the version and moves the pointer in one
transaction; workers poll the pointer and swap between micro-batches.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys


class ModelRegistry:
    def __init__(self, redis: Redis, keys: Keys, keep: int = 5) -> None:
        self.redis = redis
        self.keys = keys
        self.keep = keep  # promoted versions kept for inspection and rollback

    async def current(self) -> str | None:
        version = await self.redis.get(self.keys.model_current)
        return version.decode() if isinstance(version, bytes) else version

    async def promote(self, blob: bytes, meta: dict[str, Any]) -> str:
        """Store a version and make it the current one."""
        version = await self._store(blob, meta)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.model_current, version)
            pipe.lpush(self.keys.model_history, version)
            await pipe.execute()
        await self._forget_old()
        return version

    async def seed(self, blob: bytes, meta: dict[str, Any]) -> str:
        """Make this version current unless some model already is; returns the current version."""
        current = await self.current()
        if current is None:
            version = await self._store(blob, meta)
            if await self.redis.set(self.keys.model_current, version, nx=True):  # first worker wins a race
                await self.redis.lpush(self.keys.model_history, version)
            current = await self.current()
        return current

    async def _store(self, blob: bytes, meta: dict[str, Any]) -> str:
        version = meta["version"]
        await self.redis.hset(self.keys.model(version), mapping={"weights": blob, "meta": json.dumps(meta)})
        return version

    async def load(self, version: str) -> tuple[bytes, dict[str, Any]]:
        blob, meta = await self.redis.hmget(self.keys.model(version), ["weights", "meta"])
        if blob is None or meta is None:
            raise LookupError(f"model version {version} is not in the registry at {self.keys.model(version)}")
        return blob, json.loads(meta)

    async def history(self) -> list[str]:
        return [v.decode() for v in await self.redis.lrange(self.keys.model_history, 0, -1)]

    async def _forget_old(self) -> None:
        old = await self.redis.lrange(self.keys.model_history, self.keep, -1)
        current = await self.current()
        async with self.redis.pipeline(transaction=True) as pipe:
            for version in old:
                if version.decode() != current:
                    pipe.delete(self.keys.model(version.decode()))
            pipe.ltrim(self.keys.model_history, 0, self.keep - 1)
            await pipe.execute()
