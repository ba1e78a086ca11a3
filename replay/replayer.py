"""Send clicks to Kafka as a live stream and report once the broker has them all.

Throughput comes from building one record batch per partition per burst
(aiokafka's ``create_batch``/``send_batch``) instead of one ``send()`` per
click, which costs ~25 µs of Python each; partitions are chosen exactly as
aiokafka's default partitioner would (murmur2 of the key), so a session's
clicks land in one partition, in order, as with any other keyed producer.
Deliveries are awaited in a bounded window, never one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import pandas as pd
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from tqdm import tqdm

from sessionrec.replay.kafka.clients import start_client
from sessionrec.replay.pacing import Pacing, bursts
from sessionrec.replay.source import Click, Record, encode, frame_records


class DeliveryError(ConnectionError):
    """The broker did not take every click; the message is one line."""


@dataclass(frozen=True)
class ReplaySummary:
    clicks: int
    sessions: int
    seconds: float
    first_ts: float | None  # event time of the earliest and latest click sent
    last_ts: float | None
    topic: str

    @property
    def clicks_per_s(self) -> float:
        return self.clicks / self.seconds if self.seconds > 0 else math.inf

    @property
    def event_span_s(self) -> float:
        return 0.0 if self.first_ts is None or self.last_ts is None else self.last_ts - self.first_ts

    def line(self) -> str:
        span = ""
        if self.first_ts is not None and self.last_ts is not None:
            span = f"; event time {_when(self.first_ts)} → {_when(self.last_ts)} ({_duration(self.event_span_s)})"
        return (f"replayed {self.clicks:,} clicks of {self.sessions:,} sessions to {self.topic!r} in {self.seconds:.2f} s "
                f"({self.clicks_per_s:,.0f} clicks/s){span}")


async def start_producer(kafka_kwargs: Mapping[str, Any], **options: Any) -> AIOKafkaProducer:
    """A started producer (acks=all), or a one-line ConnectionError naming the broker."""
    producer = AIOKafkaProducer(**kafka_kwargs, acks="all", **options)
    await start_client(producer, kafka_kwargs.get("bootstrap_servers", "?"))
    return producer


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


async def replay(clicks: pd.DataFrame | Iterable[Click], *, topic: str, kafka_kwargs: Mapping[str, Any], pacing: Pacing = Pacing(),
                 progress: bool = True, max_burst: int = 4096, max_pending: int = 64, max_batch_bytes: int = 256 * 1024) -> ReplaySummary:
    """Send ``clicks`` (a canonical frame or wire click dicts, in stream order) to ``topic``.

    Returns only after the broker acknowledged every click (acks=all); a
    failed delivery raises :class:`DeliveryError`, an unreachable broker
    :class:`ConnectionError`. ``max_pending`` bounds the batches in flight.
    Batches are built here per burst, so a linger would only delay them.
    """
    if isinstance(clicks, pd.DataFrame):
        total: int | None = len(clicks)
        records: Iterable[Record] = frame_records(clicks)
    else:
        total = _len_or_none(clicks)
        records = map(encode, clicks)
    producer = await start_producer(kafka_kwargs, linger_ms=0, max_batch_size=max_batch_bytes)
    bar = tqdm(total=total, unit="click", unit_scale=True, desc=f"replay → {topic}", disable=not progress, smoothing=0.1)
    stats = _Stats()
    try:
        sender = await BatchSender.create(producer, topic, max_pending=max_pending, on_delivered=bar.update)
        started = time.perf_counter()  # from the first send: topic creation is not replay time
        async with contextlib.aclosing(bursts(records, pacing, event_time=itemgetter(2), max_burst=max_burst)) as stream:
            async for burst in stream:
                stats.add(burst)
                await sender.send((key, value) for key, value, _ts in burst)
        await sender.flush()
    finally:
        bar.close()
        await producer.stop()
    return ReplaySummary(stats.clicks, len(stats.sessions), time.perf_counter() - started, stats.first_ts, stats.last_ts, topic)


# --- internals ---------------------------------------------------------------------------------


class _Stats:
    def __init__(self) -> None:
        self.clicks = 0
        self.sessions: set[bytes] = set()
        self.first_ts: float | None = None
        self.last_ts: float | None = None

    def add(self, burst: list[Record]) -> None:
        self.clicks += len(burst)
        self.sessions.update(map(itemgetter(0), burst))
        times = list(map(itemgetter(2), burst))
        low, high = min(times), max(times)
        self.first_ts = low if self.first_ts is None else min(self.first_ts, low)
        self.last_ts = high if self.last_ts is None else max(self.last_ts, high)


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


def _len_or_none(clicks: Iterable[Click]) -> int | None:
    try:
        return len(clicks)  # type: ignore[arg-type]
    except TypeError:
        return None


def _when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{ts:g}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"
