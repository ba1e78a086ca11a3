"""Everything the project keeps in Redis, behind one object built once per process."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from sessionrec.stream.redis.commit import BatchCommit
from sessionrec.stream.redis.connection import connect
from sessionrec.stream.redis.cycles import CycleLog
from sessionrec.stream.redis.feed import LearningFeed
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import OnlineMetrics
from sessionrec.stream.redis.partitions import PartitionLog
from sessionrec.stream.redis.registry import ModelRegistry
from sessionrec.stream.redis.sessions import SessionStore
from sessionrec.stream.redis.vocabulary import SharedVocabulary
from sessionrec.stream.redis.workers import WorkerBeats
from sessionrec.stream.settings import Settings

T = TypeVar("T")


@dataclass
class RedisStore:
    redis: Redis
    keys: Keys
    sessions: SessionStore
    vocab: SharedVocabulary
    registry: ModelRegistry
    metrics: OnlineMetrics
    commit: BatchCommit  # the atomic write of a micro-batch, numbered for this process
    feed: LearningFeed  # what committed batches teach the item neighbours
    partitions: PartitionLog  # each click partition's last applied record and log incarnation
    cycles: CycleLog  # the trainer's record
    workers: WorkerBeats  # who is serving, and the consumer lag they report

    @classmethod
    def over(cls, redis: Redis, settings: Settings) -> RedisStore:
        """The store on a client that is already connected."""
        keys = Keys(settings.redis_prefix, settings.partitions)
        metrics = OnlineMetrics(redis, keys, settings.metrics_bucket_s)
        commit = BatchCommit(redis, keys, metrics, settings.state_ttl_s, settings.learn_feed_len, committer=uuid.uuid4().hex)
        return cls(redis, keys, SessionStore(redis, keys), SharedVocabulary(redis, keys), ModelRegistry(redis, keys), metrics, commit,
                   LearningFeed(redis, keys), PartitionLog(redis, keys), CycleLog(redis, keys), WorkerBeats(redis, keys, metrics))

    @classmethod
    async def open(cls, settings: Settings) -> RedisStore:
        """Connect (a one-line ConnectionError when Redis does not answer) and build the store."""
        return cls.over(await connect(settings), settings)

    @classmethod
    async def run(cls, settings: Settings, work: Callable[[RedisStore], Awaitable[T]], what: str) -> T:
        """Open a store, run ``work`` on it and close it: for commands that read once; a Redis failure is one line naming ``what``."""
        store = await cls.open(settings)
        try:
            return await work(store)
        except (RedisError, OSError) as exc:
            raise ConnectionError(f"{what} in Redis at {settings.redis_shown} failed: {exc}") from None
        finally:
            await store.close()

    async def close(self) -> None:
        await self.redis.aclose()
