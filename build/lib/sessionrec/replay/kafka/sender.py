"""Keyed records to one topic, fast: one record batch per partition per call, deliveries awaited in a window.

One ``send()`` per record costs ~25 µs of Python in aiokafka; building record
batches (``create_batch``/``send_batch``) costs a fraction of that. Partitions
are chosen exactly as aiokafka's default partitioner would (murmur2 of the
key), so a session's records land in one partition, in order, as with any
other keyed producer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner


class DeliveryError(ConnectionError):
    """The broker did not take every record; the message is one line."""


class BatchSender:
    """Keyed records to one topic: one record batch per partition per call, deliveries awaited in a window.

    ``send`` returns once its batches are handed to the producer; ``flush``
    once the broker acknowledged everything sent so far, or everything up to a
    count of ``shipped`` batches. ``on_delivered`` hears how many records each
    acknowledged batch carried.
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: list[int], *, max_pending: int = 64,
                 on_delivered: Callable[[int], None] | None = None) -> None:
        self.producer = producer
        self.topic = topic
        self.max_pending = max_pending
        self.on_delivered = on_delivered
        self._route = _Router(partitions)
        self._pending: deque[tuple[asyncio.Future[Any], int, int, int]] = deque()  # (delivery, partition, records, serial)
        self.shipped = 0  # batches handed to the producer so far

    @classmethod
    async def create(cls, producer: AIOKafkaProducer, topic: str, **options: Any) -> BatchSender:
        return cls(producer, topic, await _partitions(producer, topic), **options)

    async def send(self, records: Iterable[tuple[bytes, bytes]]) -> None:
        batches: dict[int, list[Any]] = {}  # partition -> [builder, count]
        for key, value in records:
            partition = self._route(key)
            slot = batches.get(partition)
            if slot is None:
                slot = batches[partition] = [self.producer.create_batch(), 0]
            if slot[0].append(key=key, value=value, timestamp=None) is None:  # full: ship it, start the next
                await self._ship(slot[0], partition, slot[1])
                slot[0], slot[1] = self.producer.create_batch(), 0
                if slot[0].append(key=key, value=value, timestamp=None) is None:
                    raise DeliveryError(f"a record of key {key.decode(errors='replace')!r} is larger than a whole batch")
            slot[1] += 1
        for partition, (batch, count) in batches.items():
            await self._ship(batch, partition, count)
        await self._settle(block=False)

    async def flush(self, until: int | None = None) -> None:
        """Wait for the deliveries of all batches, or of the first ``until`` ever shipped."""
        await self._settle(block=True, until=self.shipped if until is None else until)

    async def _ship(self, batch: Any, partition: int, count: int) -> None:
        try:
            future = await self.producer.send_batch(batch, self.topic, partition=partition)
        except KafkaError as exc:
            raise DeliveryError(f"Kafka did not take records for {self.topic}[{partition}]: {exc!r}") from None
        self.shipped += 1
        self._pending.append((future, partition, count, self.shipped))

    async def _settle(self, block: bool, until: int = 0) -> None:
        """Collect finished deliveries; wait for the oldest while too many are open (or up to ``until``, when ``block``)."""
        pending = self._pending
        while pending and ((block and pending[0][3] <= until) or len(pending) > self.max_pending or pending[0][0].done()):
            future, partition, count, _ = pending.popleft()
            try:
                await future
            except KafkaError as exc:
                raise DeliveryError(f"Kafka did not take {count} records for {self.topic}[{partition}]: {exc!r}") from None
            if self.on_delivered:
                self.on_delivered(count)


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
