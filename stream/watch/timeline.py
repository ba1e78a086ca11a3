"""What the dashboard and the run report draw: the stream's time buckets in Redis, as JSON-ready series.

Reads Redis only, so one reader covers any number of workers: the online
counters and latency histogram of every time bucket, the consumer lag the
workers reported into each, the registry's pointer moves (promotions,
rollbacks, pins), the trainer's recent cycles and the live workers'
heartbeats. Buckets before the first one with any data are left out, so a
young stream fills the charts instead of a window of empty time; a live view
also leaves out the bucket still filling, whose few clicks would read as a
jump.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from sessionrec.stream.redis.latency import Latency
from sessionrec.stream.redis.metrics import Counts
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.watch.monitor import rates

CYCLES_SHOWN = 20
RATES = ("hr@1", "hr@5", "hr@20", "mrr@20")


async def read_timeline(store: RedisStore, window_s: float, now: float | None = None, *, filling: bool = False) -> dict[str, Any]:
    """Everything the charts and tables show for the last ``window_s`` seconds up to ``now``; ``filling``: with the bucket still filling."""
    now = time.time() if now is None else now
    since, until = now - window_s, now if filling else now - store.metrics.bucket_s
    hashes = await store.metrics.hashes(since, until)
    lags = dict(await store.workers.lag(since, until))
    registry = store.registry
    events = [e for e in await registry.events() if e["at"] >= since]
    total = await store.metrics.total()
    return {
        "now": now,
        "bucket_s": store.metrics.bucket_s,
        "window_s": window_s,
        "buckets": bucket_series(hashes, lags, store.metrics.bucket_s, now),
        "events": events[::-1],  # oldest first, as the time axis runs
        "cycles": await store.cycles.recent(CYCLES_SHOWN),
        "workers": await store.workers.live(now),
        "total": {**asdict(total), **rates(total)},
        "model_version": await registry.current(),
        "pinned": await registry.pinned(),
    }


def bucket_series(hashes: list[tuple[int, dict[bytes, bytes]]], lags: dict[int, int | None], bucket_s: int, now: float) -> dict[str, list]:
    """Per bucket (from the first with data): start time, counters, rates and running rates, clicks/s, latency p50/p99, lag.

    A rate is None where no click was scored, a latency where none was
    measured, the lag where no worker reported; charts show those as gaps.
    """
    first = next((i for i, (start, raw) in enumerate(hashes) if raw or lags.get(start) is not None), len(hashes))
    series: dict[str, list] = {name: [] for name in ("t", "clicks", "scored", "clicks_per_s", "dead_letters", "duplicates", "latency_p50_s",
                                                     "latency_p99_s", "lag", *RATES, *(f"{r} running" for r in RATES))}
    running = Counts()
    for start, raw in hashes[first:]:
        counts, latency = Counts.from_redis(raw), Latency.from_redis(raw)
        running.add(counts)
        span = min(bucket_s, now - start) if now > start else bucket_s  # the newest bucket is still filling
        series["t"].append(start)
        series["clicks"].append(counts.clicks)
        series["scored"].append(counts.scored)
        series["clicks_per_s"].append(counts.clicks / span)
        series["dead_letters"].append(counts.dead_letters)
        series["duplicates"].append(counts.duplicates)
        series["latency_p50_s"].append(latency.quantile(0.5))
        series["latency_p99_s"].append(latency.quantile(0.99))
        series["lag"].append(lags.get(start))
        for name, value in rates(counts).items():
            series[name].append(value)
        for name, value in rates(running).items():
            series[f"{name} running"].append(value)
    return series
