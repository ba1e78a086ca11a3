"""The model registry in Redis: promoted versions, a pointer to the current one, a pin, and the pointer's history.

A version is stored as its safetensors weights and JSON metadata (never a
pickle), as model.checkpoint.to_bytes makes them: the registry itself never
touches a network. Every move of the pointer (a worker seeding it, the
trainer promoting, an operator rolling back or pinning) is one transaction
that also records the move as an event, so the dashboard can mark it on the
timeline; workers poll the pointer and swap between micro-batches.

The history lists versions in the order they last became current, newest
first; the ``keep`` newest stay loadable (so the current one always does).
A pin holds the pointer: while a version is pinned the trainer cannot promote
(``promote`` raises Pinned, checked atomically with the move) and a rollback
to another version is refused; unpinning lets the trainer promote again.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from sessionrec.stream.redis.connection import text
from sessionrec.stream.redis.keys import Keys

EVENTS_KEPT = 200


class Pinned(Exception):  # noqa: N818 - the state it reports, as a name
    """The pointer is pinned to ``version``: nothing else may become current."""

    def __init__(self, version: str) -> None:
        super().__init__(f"model version {version} is pinned (sessionrec models unpin releases it)")
        self.version = version


class ModelRegistry:
    def __init__(self, redis: Redis, keys: Keys, keep: int = 5) -> None:
        self.redis = redis
        self.keys = keys
        self.keep = keep  # versions kept for inspection and rollback

    async def current(self) -> str | None:
        return text(await self.redis.get(self.keys.model_current))

    async def pinned(self) -> str | None:
        return text(await self.redis.get(self.keys.model_pin))

    async def promote(self, blob: bytes, meta: dict[str, Any]) -> str:
        """Store a version and make it the current one; raises Pinned while a version is pinned."""
        version = meta["version"]
        await self._point(version, "promoted", stored=(blob, meta))
        await self._forget_old()
        return version

    async def seed(self, blob: bytes, meta: dict[str, Any]) -> str:
        """Make this version current unless some model already is; returns the current version."""
        current = await self.current()
        if current is None:
            version = await self._store(blob, meta)
            if await self.redis.set(self.keys.model_current, version, nx=True):  # first worker wins a race
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lpush(self.keys.model_history, version)
                    self._event(pipe, "seeded", version, None)
                    await pipe.execute()
            current = await self.current()
        return current

    async def rollback(self, version: str) -> str | None:
        """Make a kept version current again; returns the version it replaced. Refused (Pinned) while another is pinned."""
        await self.meta(version)  # a LookupError naming the kept versions
        return await self._point(version, "rolled back")

    async def pin(self, version: str) -> str | None:
        """Make a kept version current and hold it there; returns the version it replaced."""
        await self.meta(version)
        return await self._point(version, "pinned", pin=True)

    async def unpin(self) -> str | None:
        """Release the pin; returns the version that was pinned (None: none was)."""
        pinned = await self.pinned()
        if pinned is not None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.keys.model_pin)
                self._event(pipe, "unpinned", pinned, pinned)
                await pipe.execute()
        return pinned

    async def load(self, version: str) -> tuple[bytes, dict[str, Any]]:
        blob, meta = await self.redis.hmget(self.keys.model(version), ["weights", "meta"])
        if blob is None or meta is None:
            raise LookupError(f"model version {version} is not in the registry at {self.keys.model(version)}")
        return blob, json.loads(meta)

    async def meta(self, version: str) -> dict[str, Any]:
        """A kept version's metadata, without its weights."""
        raw = await self.redis.hget(self.keys.model(version), "meta")
        if raw is None:
            raise LookupError(f"model version {version} is not in the registry (kept: {', '.join(await self.history()) or 'none'})")
        return json.loads(raw)

    async def history(self) -> list[str]:
        """Versions in the order they last became current, newest first."""
        return [v.decode() for v in await self.redis.lrange(self.keys.model_history, 0, -1)]

    async def events(self, count: int = EVENTS_KEPT) -> list[dict[str, Any]]:
        """The pointer's moves, newest first: at, event (seeded, promoted, rolled back, pinned, unpinned), version, previous."""
        return [json.loads(raw) for raw in await self.redis.lrange(self.keys.model_events, 0, count - 1)]

    # --- internals ------------------------------------------------------------------------------

    async def _point(self, version: str, event: str, *, pin: bool = False, stored: tuple[bytes, dict[str, Any]] | None = None) -> str | None:
        """Move the pointer to ``version`` (storing it first, when given) in one transaction; returns the version it replaced.

        Raises Pinned when another version is pinned, unless this move pins; the
        pin and the pointer are watched, so a pin set meanwhile is never overrun.
        """
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.keys.model_pin, self.keys.model_current)
                    pinned = text(await pipe.get(self.keys.model_pin))
                    if pinned is not None and pinned != version and not pin:
                        raise Pinned(pinned)
                    previous = text(await pipe.get(self.keys.model_current))
                    pipe.multi()
                    if stored is not None:
                        pipe.hset(self.keys.model(version), mapping={"weights": stored[0], "meta": json.dumps(stored[1])})
                    self._move(pipe, version, event, previous)
                    if pin:
                        pipe.set(self.keys.model_pin, version)
                    await pipe.execute()
                    return previous
                except WatchError:  # the pin or the pointer moved meanwhile: look again
                    continue

    def _move(self, pipe: Any, version: str, event: str, previous: str | None) -> None:
        """Queue the pointer's move to ``version``, in the history and as an event."""
        pipe.set(self.keys.model_current, version)
        pipe.lrem(self.keys.model_history, 0, version)
        pipe.lpush(self.keys.model_history, version)
        self._event(pipe, event, version, previous)

    def _event(self, pipe: Any, event: str, version: str, previous: str | None) -> None:
        pipe.lpush(self.keys.model_events, json.dumps({"at": time.time(), "event": event, "version": version, "previous": previous}))
        pipe.ltrim(self.keys.model_events, 0, EVENTS_KEPT - 1)

    async def _store(self, blob: bytes, meta: dict[str, Any]) -> str:
        version = meta["version"]
        await self.redis.hset(self.keys.model(version), mapping={"weights": blob, "meta": json.dumps(meta)})
        return version

    async def _forget_old(self) -> None:
        old = await self.redis.lrange(self.keys.model_history, self.keep, -1)
        current = await self.current()
        async with self.redis.pipeline(transaction=True) as pipe:
            for version in old:
                if version.decode() != current:
                    pipe.delete(self.keys.model(version.decode()))
            pipe.ltrim(self.keys.model_history, 0, self.keep - 1)
            await pipe.execute()
