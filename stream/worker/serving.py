"""What a worker holds between micro-batches: connections, and the served model with its hot swap and live item neighbours."""

from __future__ import annotations

import asyncio
import gc
import logging

import mode
import torch

from sessionrec.replay.kafka.clients import start_admin, start_producer
from sessionrec.replay.kafka.sender import BatchSender
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.prometheus import WorkerMetrics
from sessionrec.stream.worker.batch import Applier, BatchLine
from sessionrec.stream.worker.inference import Engine, pick_device
from sessionrec.stream.worker.served import ServedModel, check_model

log = logging.getLogger(__name__)


async def preflight(settings: Settings) -> None:
    """Everything a worker needs, checked before Faust starts, so that a missing piece is one line, not a traceback.

    The model's needs (stream.worker.served.check_model) and the broker; raises SettingsError, ConnectionError or DataError.
    """
    await check_model(settings)
    admin = await start_admin(settings)
    await admin.close()


class Serving(mode.Service):
    def __init__(self, settings: Settings, metrics: WorkerMetrics, **kwargs) -> None:  # noqa: ANN003 - mode.Service options
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics  # this worker's Prometheus metrics
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
        self.add_future(self.model.follow())  # promotions and the learning feed
        self.producer = await start_producer(s, linger_ms=0)
        recs, dlq = await BatchSender.create(self.producer, s.recs_topic), await BatchSender.create(self.producer, s.dlq_topic)
        self.line = BatchLine(Applier(s, self.store, recover=self.model.recover), recs, dlq, self.metrics)
        # What start-up made (torch, Faust, the model) lives as long as the worker. Frozen, the cyclic collector's full
        # passes no longer walk it: unfrozen, one took 88-116 ms during a 10-second serving run, a stall of every click.
        gc.collect()
        gc.freeze()
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
