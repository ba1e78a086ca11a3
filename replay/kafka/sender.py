"""Keyed records to one topic, fast: one record batch per partition per call, deliveries awaited in a window.

One ``send()`` per record costs ~25 µs of Python in aiokafka; building record
batches (``create_batch``/``send_batch``) costs a fraction of that. Partitions
are chosen exactly as aiokafka's default partitioner would (murmur2 of the
key), so a session's records land in one partition, in order, as with any
other keyed producer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from sessionrec.replay.kafka.clients import backoff

log = logging.getLogger(__name__)


class DeliveryError(ConnectionError):
    """The broker did not take every record; the message is one line."""


class BatchSender:
    """Keyed records to one topic: one record batch per partition per call, deliveries awaited in a window.

    ``send`` returns once its batches are handed to the producer; ``flush``
    once the broker acknowledged everything sent so far, or everything up to a
    count of ``shipped`` batches. ``on_delivered`` hears how many records each
    acknowledged batch carried.

    A broker that does not answer (an outage, a restart) is waited out: a batch
    the producer could not hand over or deliver is sent again, with backoff up
    to ``MAX_BACKOFF_S``, each attempt logged, until it is delivered. Output is
    at-least-once anyway, and consumers de-duplicate by (partition, offset).
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: list[int], *, max_pending: int = 64,
                 on_delivered: Callable[[int], None] | None = None) -> None:
        self.producer = producer
        self.topic = topic
        self.max_pending = max_pending
        self.on_delivered = on_delivered
        self._route = _Router(partitions)
        self._pending: deque[tuple[asyncio.Future[Any], int, list[tuple[bytes, bytes]], int]] = deque()  # (delivery, partition, records, serial)
        self.shipped = 0  # batches handed to the producer so far

    @classmethod
    async def create(cls, producer: AIOKafkaProducer, topic: str, **options: Any) -> BatchSender:
        return cls(producer, topic, await _partitions(producer, topic), **options)

    async def send(self, records: Iterable[tuple[bytes, bytes]]) -> None:
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in records:
            by_partition.setdefault(self._route(key), []).append((key, value))
        for partition, chunk in by_partition.items():
            await self._ship(partition, chunk)
        await self._settle(block=False)

    async def flush(self, until: int | None = None) -> None:
        """Wait for the deliveries of all batches, or of the first ``until`` ever shipped."""
        await self._settle(block=True, until=self.shipped if until is None else until)

    async def _ship(self, partition: int, records: list[tuple[bytes, bytes]]) -> None:
        """Hand ``records`` to the producer as record batches (as many as they fill)."""
        batch, start = self.producer.create_batch(), 0
        for n, (key, value) in enumerate(records):
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it, start the next
                if n == start:
                    raise DeliveryError(f"a record of key {key.decode(errors='replace')!r} is larger than a whole batch")
                await self._hand_over(batch, partition, records[start:n])
                batch, start = self.producer.create_batch(), n
                batch.append(key=key, value=value, timestamp=None)
        await self._hand_over(batch, partition, records[start:])

    async def _hand_over(self, batch: Any, partition: int, records: list[tuple[bytes, bytes]]) -> None:
        self._pending.append((await self._send_batch(partition, records, batch), partition, records, self.shipped + 1))
        self.shipped += 1

    async def _send_batch(self, partition: int, records: list[tuple[bytes, bytes]], batch: Any = None) -> asyncio.Future[Any]:
        """Hand one batch of ``records`` to the producer, rebuilding and retrying it while the producer refuses."""
        delay = 0.5
        while True:
            try:
                return await self.producer.send_batch(batch if batch is not None else self._rebuilt(records), self.topic, partition=partition)
            except KafkaError as exc:
                log.warning("Kafka did not take %d records for %s[%d] (%r); retrying in %.1f s", len(records), self.topic, partition, exc, delay)
                delay, batch = await backoff(delay), None

    def _rebuilt(self, records: list[tuple[bytes, bytes]]) -> Any:
        batch = self.producer.create_batch()
        for key, value in records:
            batch.append(key=key, value=value, timestamp=None)
        return batch

    async def _settle(self, block: bool, until: int = 0) -> None:
        """Collect finished deliveries; wait for the oldest while too many are open (or up to ``until``, when ``block``)."""
        pending = self._pending
        while pending and ((block and pending[0][3] <= until) or len(pending) > self.max_pending or pending[0][0].done()):
            future, partition, records, _ = pending.popleft()
            delay = 0.5
            while True:
                try:
                    await future
                    break
                except KafkaError as exc:
                    log.warning("Kafka did not acknowledge %d records for %s[%d] (%r); sending them again in %.1f s",
                                len(records), self.topic, partition, exc, delay)
                    delay = await backoff(delay)
                    future = await self._send_batch(partition, records)
            if self.on_delivered:
                self.on_delivered(len(records))


# --- internals ---------------------------------------------------------------------------------


class _Router:
    """Key → partition as aiokafka's DefaultPartitioner does, cached per session (murmur2 in pure Python is slow)."""

    def __init__(self, partitions: list[int], cache_size: int = 1 << 20) -> None:
        self._partitions = partitions
        self._partitioner = DefaultPartitioner()
        self._cache: dict[bytes, int] = {}
        self._cache_size = cache_size

    def __call__(self, key: bytes) -> int:
        partition = self._cache.get(key)
        if partition is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            partition = self._cache[key] = self._partitioner(key, self._partitions, self._partitions)
        return partition


async def _partitions(producer: AIOKafkaProducer, topic: str) -> list[int]:
    try:
        found = await producer.partitions_for(topic)
    except KafkaError as exc:
        raise DeliveryError(f"topic {topic!r} is not available on Kafka ({exc!r})") from None
    if not found:
        raise DeliveryError(f"topic {topic!r} has no partitions on Kafka")
    return sorted(found)
