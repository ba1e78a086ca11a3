"""What a worker holds between micro-batches: connections, the model, and the registry watch.

The model is swapped between micro-batches when the registry's pointer moves
(DESIGN rule 4): the new engine is built off the event loop, then replaces
the old one in a single assignment, so no click waits on a swap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import mode
import torch
from redis.asyncio import Redis
from redis.exceptions import RedisError

from model import checkpoint
from replay.producer import BatchSender, start_producer
from stream.inference import Engine, pick_device
from stream.keys import Keys
from stream.metrics import OnlineMetrics
from stream.processor import Processor, Record
from stream.registry import ModelRegistry
from stream.settings import Settings
from stream.vocab import SharedVocabulary
from stream.web import record_batch

log = logging.getLogger(__name__)


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

    async def handle(self, records: Sequence[Record]) -> None:
        """Process a micro-batch; on a Redis outage wait and redo it rather than lose it."""
        await self._ready.wait()
        delay = 0.5
        while True:
            try:
                return await self._handle(records)
            except (RedisError, OSError) as exc:
                log.warning("micro-batch of %d clicks failed (%s); retrying in %.1f s", len(records), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _handle(self, records: Sequence[Record]) -> None:
        """Process, send, then commit: at-least-once output, effectively-once state."""
        started = time.perf_counter()
        outcome = await self.processor.process(records, self.engine)
        await self.recs.send(outcome.recommendations)
        if outcome.dead_letters:
            await self.dlq.send((b"dlq", value) for value in outcome.dead_letters)
            await self.dlq.flush()
        await self.recs.flush()
        await outcome.commit()
        record_batch(len(records), len(outcome.recommendations), len(outcome.dead_letters), time.perf_counter() - started)
