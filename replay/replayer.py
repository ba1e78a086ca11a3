"""Send clicks to Kafka as a live stream and report once the broker has them all.

Each burst that pacing releases becomes one record batch per partition
(kafka.sender.BatchSender); deliveries are awaited in a bounded window,
never one by one.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter

import pandas as pd
from tqdm import tqdm

from sessionrec.replay.kafka.clients import start_producer
from sessionrec.replay.kafka.connection import KafkaConnection
from sessionrec.replay.kafka.sender import BatchSender
from sessionrec.replay.pacing import Pacing, bursts
from sessionrec.replay.source import Click, Record, encode, frame_records


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


async def replay(clicks: pd.DataFrame | Iterable[Click], *, topic: str, kafka: KafkaConnection, pacing: Pacing = Pacing(),
                 progress: bool = True, max_burst: int = 4096, max_pending: int = 64, max_batch_bytes: int = 256 * 1024) -> ReplaySummary:
    """Send ``clicks`` (a canonical frame or wire click dicts, in stream order) to ``topic``.

    Returns only after the broker acknowledged every click (acks=all); a
    delivery that fails is sent again (a transient outage only delays the
    replay), a topic that is missing or a click larger than a whole batch
    raises ``DeliveryError``, an unreachable broker :class:`ConnectionError`. ``max_pending`` bounds the batches in flight.
    Batches are built here per burst, so a linger would only delay them.
    """
    if isinstance(clicks, pd.DataFrame):
        total: int | None = len(clicks)
        records: Iterable[Record] = frame_records(clicks)
    else:
        total = _len_or_none(clicks)
        records = map(encode, clicks)
    producer = await start_producer(kafka, linger_ms=0, max_batch_size=max_batch_bytes)
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
