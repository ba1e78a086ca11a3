"""What a worker holds between micro-batches: connections, the model, and the registry watch.

The model is swapped between micro-batches when the registry's pointer moves
(DESIGN rule 4): the new engine is built off the event loop, then replaces
the old one in a single assignment, so no click waits on a swap.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import mode
import torch
from redis.exceptions import RedisError

from sessionrec.model import checkpoint
from sessionrec.model.neighbours import NeighbourTable
from sessionrec.replay.kafka.clients import start_admin, start_producer
from sessionrec.replay.kafka.sender import BatchSender
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.prometheus import WorkerMetrics
from sessionrec.stream.worker.batch import Applier, BatchLine
from sessionrec.stream.worker.inference import Engine, pick_device
from sessionrec.stream.worker.learner import NeighbourLearner

log = logging.getLogger(__name__)


async def preflight(settings: Settings) -> None:
    """Everything a worker needs, checked before Faust starts, so that a missing piece is one line, not a traceback.

    The device, Redis, a model to serve (the registry's, or the checkpoint that
    seeds it) and the broker; raises SettingsError, ConnectionError or DataError.
    """
    pick_device(settings.device)
    store = await RedisStore.open(settings)
    try:
        await seed_registry(settings, store)
    finally:
        await store.close()
    admin = await start_admin(settings)
    await admin.close()


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


class Serving(mode.Service):
    def __init__(self, settings: Settings, metrics: WorkerMetrics, **kwargs) -> None:  # noqa: ANN003 - mode.Service options
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics  # this worker's Prometheus metrics
        self.device = pick_device(settings.device)
        torch.set_num_threads(settings.torch_threads)
        self.engine: Engine | None = None
        self.line: BatchLine | None = None
        self.neighbours: NeighbourTable | None = None  # the live item neighbours: every engine reads them, the learner writes them
        self.learner: NeighbourLearner | None = None
        self._ready = asyncio.Event()  # the agent and the ingress may start before this service has
        self._recovering = asyncio.Lock()

    async def on_start(self) -> None:
        s = self.settings
        self.store = await RedisStore.open(s)
        self.engine = await self._load(await seed_registry(s, self.store))
        self.neighbours = self.engine.neighbours  # seeded with what the model was trained with
        if self.neighbours is not None and s.learn_online:
            self.learner = NeighbourLearner(self.neighbours, self.store.feed)
            await self.learner.catch_up_all()  # what earlier batches taught, before the first click
            await self.add_runtime_dependency(self.learner)
        self.producer = await start_producer(s, linger_ms=0)
        recs, dlq = await BatchSender.create(self.producer, s.recs_topic), await BatchSender.create(self.producer, s.dlq_topic)
        self.line = BatchLine(Applier(s, self.store, recover=self.recover), recs, dlq, self.metrics)
        self._ready.set()
        log.info("serving model %s on %s", self.engine.version, self.device)

    async def on_stop(self) -> None:
        if self._ready.is_set():  # a start that failed half-way has nothing of this to stop
            await self.producer.stop()
        if hasattr(self, "store"):
            await self.store.close()

    async def ready(self) -> BatchLine:
        """The batch line, once connections and the model are up."""
        await self._ready.wait()
        assert self.line is not None
        return self.line

    async def _load(self, version: str) -> Engine:
        blob, meta = await self.store.registry.load(version)
        return await asyncio.to_thread(Engine, blob, meta, self.device, self.settings.top_k, self.neighbours)

    async def recover(self) -> Engine:
        """Redis lost its data: seed it again from the checkpoint (unless another worker just did) and start over from it.

        The vocabulary cache, the model (fine-tuned versions are gone with the
        registry) and the learned neighbours (their stream items had indices of
        the lost vocabulary) go back to what the checkpoint holds; sessions start
        fresh, since their states are gone too.
        """
        async with self._recovering:
            if await self.store.vocab.is_current():
                return self.engine  # recovered already, for an earlier batch
            self.store.vocab.forget()
            version = await seed_registry(self.settings, self.store)
            self.neighbours = None  # the new engine brings the model's own
            self.engine = await self._load(version)
            self.neighbours = self.engine.neighbours
            if self.learner is not None and self.neighbours is not None:
                self.learner.restart(self.neighbours)
            log.warning("Redis was seeded again (epoch %s); serving model %s", self.store.vocab.epoch, version)
            return self.engine

    @mode.Service.timer(1.0)
    async def _follow_registry(self) -> None:
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
