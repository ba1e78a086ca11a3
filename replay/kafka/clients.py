"""Every Kafka client of the project is made here: one place for connection errors, retries and broker quirks.

Quirks of Tansu, the local broker, that shape the defaults (harmless on Apache Kafka):
- it answers a consumer-group join only after half the session timeout, so group
  consumers use the connection's short session (6 s) and a 1 s heartbeat;
- it holds every fetch for the full ``fetch_max_wait_ms`` even when data is there,
  so each consumer says how long it can afford to wait;
- ``end_offsets()`` and an offset reset to "latest" are wrong (they count record
  batches), so consumers always start from the earliest offset, and group-less
  readers seek to the beginning (reader.TopicReader);
- a metadata lookup of an unknown topic creates it with 4 partitions, so topics are
  created up front with the configured count (topics.ensure_topics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from sessionrec.replay.kafka.connection import KafkaConnection

log = logging.getLogger(__name__)
Client = TypeVar("Client", AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient)
MAX_BACKOFF_S = 10.0


@contextlib.contextmanager
def quiet(name: str = "aiokafka") -> Iterator[None]:
    """Silence a library's logger while its failure is reported another way."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def start(client: Client, kafka: KafkaConnection) -> Client:
    """Start an aiokafka producer, consumer or admin client, or raise a one-line ConnectionError."""
    try:
        with quiet():  # aiokafka logs the failure at ERROR; the error below says it in one line
            await client.start()
    except KafkaConnectionError:
        await _close(client)
        raise ConnectionError(f"cannot reach Kafka at {kafka.kafka_bootstrap}; is a broker running there?") from None
    except (KafkaError, OSError) as exc:  # authentication, TLS, protocol
        await _close(client)
        raise ConnectionError(f"cannot connect to Kafka at {kafka.kafka_bootstrap}: {exc!r}") from None
    return client


async def start_consumer(kafka: KafkaConnection, *topics: str, group: str | None = None, fetch_wait_ms: int = 100,
                         auto_commit: bool = False, **options: Any) -> AIOKafkaConsumer:
    """A started consumer; with ``group``, a member of that consumer group subscribed to ``topics``.

    Offsets are committed by whoever consumes, when its work is done, unless ``auto_commit``.
    """
    group_options: dict[str, Any] = {}
    if group is not None:
        group_options = {"group_id": group, "session_timeout_ms": int(kafka.kafka_session_timeout_s * 1000), "heartbeat_interval_ms": 1000}
    consumer = AIOKafkaConsumer(*topics, **kafka.client_kwargs(), **group_options, enable_auto_commit=auto_commit,
                                auto_offset_reset="earliest", fetch_max_wait_ms=fetch_wait_ms, **options)
    return await start(consumer, kafka)


async def start_producer(kafka: KafkaConnection, **options: Any) -> AIOKafkaProducer:
    """A started producer that waits for every in-sync replica (acks=all)."""
    producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all", request_timeout_ms=int(kafka.kafka_request_timeout_s * 1000), **options)
    return await start(producer, kafka)


async def start_admin(kafka: KafkaConnection) -> AIOKafkaAdminClient:
    return await start(AIOKafkaAdminClient(**kafka.client_kwargs()), kafka)


async def fetch(consumer: AIOKafkaConsumer, *, timeout_ms: int, max_records: int | None = None, what: str = "records",
                on_retry: Callable[[str], None] | None = None) -> dict[TopicPartition, list[ConsumerRecord]]:
    """One ``getmany``, retried with bounded backoff while the broker fails (aiokafka reconnects by itself).

    A transient outage delays the caller; it never ends it. Each retry is
    logged (and passed to ``on_retry``, for a command that prints it).
    """
    delay = 0.5
    while True:
        try:
            return await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            message = f"fetching {what} failed ({exc!r}); retrying in {delay:.1f} s"
            log.warning("%s", message)
            if on_retry is not None:
                on_retry(message)
            delay = await backoff(delay)


async def backoff(delay: float) -> float:
    """Wait ``delay`` seconds; the next, longer wait (doubling, bounded): one rule for every retry against the broker."""
    await asyncio.sleep(delay)
    return min(delay * 2, MAX_BACKOFF_S)


async def _close(client: Any) -> None:
    await (client.close() if hasattr(client, "close") else client.stop())
