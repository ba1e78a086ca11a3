"""The served model: the registry's current version as an Engine, kept current (DESIGN rule 4).

Workers and the API serve through it. The registry is seeded from the
checkpoint in ``model_dir`` when it is empty; a newly promoted version is
built off the event loop, then replaces the old engine in one assignment,
so nothing waits on a swap. Every engine reads the same live item
neighbours (``neighbours``), which outlive model versions; with
``learn_online`` they learn every lesson of the learning feed.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import torch
from redis.exceptions import RedisError

from sessionrec.model import checkpoint
from sessionrec.model.neighbours import NeighbourTable
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.worker.inference import Engine, pick_device
from sessionrec.stream.worker.learner import NeighbourLearner

log = logging.getLogger(__name__)


async def seed_registry(settings: Settings, store: RedisStore) -> str:
    """The current model version; the checkpoint in ``settings.model_dir`` becomes it (and seeds the vocabulary) when none is."""
    current = await store.registry.current()
    if current is None:
        ckpt = checkpoint.load(Path(settings.model_dir))
        await store.vocab.seed(ckpt.vocab.items[: ckpt.net.n_items])
        current = await store.registry.seed(*checkpoint.to_bytes(ckpt))
    else:
        await store.vocab.seeded()
    return current


async def check_model(settings: Settings) -> None:
    """The device, Redis and a model to serve (the registry's, or the checkpoint that seeds it), before a server starts.

    Raises SettingsError, ConnectionError or DataError: one line each, not a traceback.
    """
    pick_device(settings.device)
    store = await RedisStore.open(settings)
    try:
        await seed_registry(settings, store)
    finally:
        await store.close()


class ServedModel:
    def __init__(self, settings: Settings, store: RedisStore, device: torch.device) -> None:
        self.settings = settings
        self.store = store
        self.device = device
        self.engine: Engine | None = None
        self.neighbours: NeighbourTable | None = None  # the live item neighbours: every engine reads them, the learner writes them
        self.learner: NeighbourLearner | None = None
        self._recovering = asyncio.Lock()

    async def start(self) -> Engine:
        """The current model (seeding the registry if it is empty); its trained neighbours, with what the feed has taught, become the live table."""
        self.engine = await self._load(await seed_registry(self.settings, self.store))
        self.neighbours = self.engine.neighbours
        if self.neighbours is not None and self.settings.learn_online:
            self.learner = NeighbourLearner(self.neighbours, self.store.feed)
            await self.learner.catch_up_all()  # what earlier batches taught, before the first click
        return self.engine

    async def follow(self, interval_s: float = 1.0) -> None:
        """Keep it current until cancelled: the registry checked every ``interval_s``, lessons learned as they arrive."""

        async def registry() -> None:
            while True:
                await asyncio.sleep(interval_s)
                await self.refresh()

        await asyncio.gather(registry(), *([self.learner.follow()] if self.learner is not None else []))

    async def refresh(self) -> None:
        """Serve the registry's current version if it moved; a failed check keeps the one served (and says so)."""
        if self.engine is None:
            return
        try:
            if not await self.store.vocab.is_current():
                await self.recover()
                return
            version = await self.store.registry.current()
            if version and version != self.engine.version:
                self.engine = await self._load(version)
                log.info("now serving model %s", version)
        except (RedisError, LookupError) as exc:
            log.warning("model registry check failed, keeping %s: %s", self.engine.version, exc)

    async def recover(self) -> Engine:
        """Redis lost its data: seed it again from the checkpoint (unless another process just did) and start over from it.

        The vocabulary cache, the model (fine-tuned versions are gone with the
        registry) and the learned neighbours (their stream items had indices of
        the lost vocabulary) go back to what the checkpoint holds; sessions start
        fresh, since their states are gone too.
        """
        async with self._recovering:
            if await self.store.vocab.is_current():  # recovered already, for an earlier batch, or only partitions' slots forgot
                assert self.engine is not None
                await self.store.vocab.seeded()  # their copies of the epoch, again
                return self.engine
            self.store.vocab.forget()
            version = await seed_registry(self.settings, self.store)
            self.neighbours = None  # the new engine brings the model's own
            self.engine = await self._load(version)
            self.neighbours = self.engine.neighbours
            if self.learner is not None and self.neighbours is not None:
                self.learner.restart(self.neighbours)
            log.warning("Redis was seeded again (epoch %s); serving model %s", self.store.vocab.epoch, version)
            return self.engine

    async def _load(self, version: str) -> Engine:
        blob, meta = await self.store.registry.load(version)
        return await asyncio.to_thread(Engine, blob, meta, self.device, self.settings.top_k, self.neighbours)
