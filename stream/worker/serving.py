"""What a worker holds between micro-batches: connections, the model, and the registry watch.

The model is swapped between micro-batches when the registry's pointer moves
(DESIGN rule 4): the new engine is built off the event loop, then replaces
the old one in a single assignment, so no click waits on a swap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import mode
import torch
from redis.asyncio import Redis
from redis.exceptions import RedisError

from sessionrec.model import checkpoint
from sessionrec.replay.replayer import BatchSender, start_producer
from sessionrec.stream.worker.inference import Engine, pick_device
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import OnlineMetrics
from sessionrec.stream.worker.processor import Outcome, Processor, Record
from sessionrec.stream.redis.registry import ModelRegistry
from sessionrec.stream.settings import Settings
from sessionrec.stream.redis.vocabulary import SharedVocabulary
from sessionrec.stream.watch.web import record_batch

log = logging.getLogger(__name__)
T = TypeVar("T")


async def connect_redis(settings: Settings) -> Redis:
    """A Redis client that answered a PING, or a one-line ConnectionError."""
    redis = Redis.from_url(settings.redis_url, **settings.redis_kwargs())
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        await redis.aclose()
        raise ConnectionError(f"cannot reach Redis at {settings.redis_url}: {exc}") from None
    return redis


async def seed_registry(settings: Settings, redis: Redis, keys: Keys, vocab: SharedVocabulary) -> str:
    """The current model version; the checkpoint in ``settings.model_dir`` becomes it when none is."""
    registry = ModelRegistry(redis, keys)
    current = await registry.current()
    if current is None:
        ckpt = checkpoint.load(Path(settings.model_dir))
        await vocab.seed(ckpt.vocab.items[: ckpt.net.n_items])
        current = await registry.seed(ckpt)
    return current


class Serving(mode.Service):
    def __init__(self, settings: Settings, **kwargs) -> None:  # noqa: ANN003 - mode.Service options
        super().__init__(**kwargs)
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self.device = pick_device(settings.device)
        torch.set_num_threads(settings.torch_threads)
        self.engine: Engine | None = None
        self._ready = asyncio.Event()  # agents may start before this service has
        self._finishing: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        s = self.settings
        self.redis = await connect_redis(s)
        self.vocab = SharedVocabulary(self.redis, self.keys)
        self.registry = ModelRegistry(self.redis, self.keys)
        self.processor = Processor(s, self.redis, self.vocab, OnlineMetrics(self.redis, self.keys, s.metrics_bucket_s), self.keys)
        self.engine = await self._load(await seed_registry(s, self.redis, self.keys, self.vocab))
        self.producer = await start_producer(s.kafka_client_kwargs(), linger_ms=0)
        self.recs = await BatchSender.create(self.producer, s.recs_topic)
        self.dlq = await BatchSender.create(self.producer, s.dlq_topic)
        self._ready.set()
        log.info("serving model %s on %s", self.engine.version, self.device)

    async def on_stop(self) -> None:
        await self.producer.stop()
        await self.redis.aclose()

    async def _load(self, version: str) -> Engine:
        blob, meta = await self.registry.load(version)
        return await asyncio.to_thread(Engine, blob, meta, self.device, self.settings.top_k)

    @mode.Service.timer(1.0)
    async def _follow_registry(self) -> None:
        if self.engine is None:
            return
        try:
            version = await self.registry.current()
            if version and version != self.engine.version:
                self.engine = await self._load(version)
                log.info("now serving model %s", version)
        except (RedisError, LookupError) as exc:
            log.warning("model registry check failed, keeping %s: %s", self.engine.version, exc)

    async def handle(self, records: Sequence[Record]) -> asyncio.Task[None]:
        """Process a micro-batch now; finish it (acknowledged sends, then the state commit) in the background.

        Finishing waits on the previous batch's finish, so commits land in
        order, and the next batch is processed meanwhile (it reads the states
        this one has not committed yet). The returned task ends when the batch
        is committed: at-least-once output, effectively-once state.
        """
        await self._ready.wait()
        started = time.perf_counter()
        outcome = await self._retry(lambda: self.processor.process(records, self.engine), len(records))
        await self.recs.send(outcome.recommendations)
        await self.dlq.send((b"dlq", value) for value in outcome.dead_letters)
        self._finishing = asyncio.create_task(self._finish(outcome, self.recs.shipped, self.dlq.shipped, self._finishing, started, len(records)))
        return self._finishing

    async def _finish(self, outcome: Outcome, recs: int, dlq: int, previous: asyncio.Task | None, started: float, clicks: int) -> None:
        if previous is not None:
            await previous  # a batch that failed to finish stops every later one: they are redelivered
        await self.recs.flush(until=recs)
        await self.dlq.flush(until=dlq)
        await self._retry(outcome.commit, clicks)
        record_batch(clicks, len(outcome.recommendations), len(outcome.dead_letters), time.perf_counter() - started)

    async def _retry(self, action: Callable[[], Awaitable[T]], clicks: int) -> T:
        """On a Redis outage, wait and redo rather than lose the batch."""
        delay = 0.5
        while True:
            try:
                return await action()
            except (RedisError, OSError) as exc:
                log.warning("micro-batch of %d clicks failed (%s); retrying in %.1f s", clicks, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
