"""What a worker holds between micro-batches: connections, the served model and its hot swap, the item-neighbour learner."""

from __future__ import annotations

import asyncio
import logging

import mode
import torch

from sessionrec.replay.kafka.clients import start_admin, start_producer
from sessionrec.replay.kafka.sender import BatchSender
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.worker.batch import Applier, BatchLine
from sessionrec.stream.worker.inference import Engine, pick_device
from sessionrec.stream.worker.learner import NeighbourLearner
from sessionrec.stream.worker.served import ServedModel, seed_registry

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


class Serving(mode.Service):
    def __init__(self, settings: Settings, **kwargs) -> None:  # noqa: ANN003 - mode.Service options
        super().__init__(**kwargs)
        self.settings = settings
        self.device = pick_device(settings.device)
        torch.set_num_threads(settings.torch_threads)
        self.model: ServedModel | None = None
        self.line: BatchLine | None = None
        self._ready = asyncio.Event()  # the agent and the ingress may start before this service has

    @property
    def engine(self) -> Engine | None:
        """The model served now: read it afresh for every micro-batch."""
        return self.model.engine if self.model is not None else None

    async def on_start(self) -> None:
        s = self.settings
        self.store = await RedisStore.open(s)
        self.model = ServedModel(s, self.store, self.device)
        engine = await self.model.start()
        if self.model.neighbours is not None and s.learn_online:
            learner = NeighbourLearner(self.model.neighbours, self.store.feed)
            while await learner.catch_up(block_ms=None):  # what earlier batches taught, before the first click
                pass
            self.add_future(learner.follow())
        self.producer = await start_producer(s, linger_ms=0)
        recs, dlq = await BatchSender.create(self.producer, s.recs_topic), await BatchSender.create(self.producer, s.dlq_topic)
        self.line = BatchLine(Applier(s, self.store), recs, dlq)
        self._ready.set()
        log.info("serving model %s on %s", engine.version, self.device)

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

    @mode.Service.timer(1.0)
    async def _follow_registry(self) -> None:
        if self.model is not None:
            await self.model.refresh()
