"""What `sessionrec monitor` shows: the online counters every worker writes to Redis, as a live table.

Reads only Redis (the running totals, the per-time-bucket hashes of
stream.redis.metrics and the registry's pointer), so it watches any number of
workers at once and never touches Kafka. The table is built by a pure
function, :func:`metrics_table`, which the demo reuses.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from redis.exceptions import RedisError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.redis.registry import ModelRegistry
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings

RECENT_S = 60.0  # "last minute": the time buckets that overlap it


@dataclass(frozen=True)
class Snapshot:
    """What the counters said at one moment."""

    at: float  # unix seconds
    total: Counts  # since the counters were created
    recent: Counts  # the time buckets overlapping the last RECENT_S seconds
    recent_span_s: float  # seconds those buckets cover up to ``at`` (RECENT_S plus part of a bucket)
    version: str | None  # current model in the registry

    @property
    def recent_events_per_s(self) -> float:
        """Clicks per second over the recent buckets: the rate when there is no previous snapshot."""
        return self.recent.clicks / self.recent_span_s if self.recent_span_s > 0 else 0.0


async def read_snapshot(metrics: OnlineMetrics, registry: ModelRegistry, now: float | None = None) -> Snapshot:
    now = time.time() if now is None else now
    total = await metrics.total()
    recent = Counts()
    buckets = await metrics.buckets(now - RECENT_S, now)
    for _, counts in buckets:
        recent.add(counts)
    span = now - buckets[0][0] if buckets else 0.0
    return Snapshot(now, total, recent, span, await registry.current())


class RateMeter:
    """Clicks per second over at least the last ``window_s`` seconds of samples.

    A live view polls as soon as messages arrive, often milliseconds apart; a
    rate over one such gap shows a burst as hundreds of thousands per second.
    """

    def __init__(self, window_s: float, at: float, count: int) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int]] = deque([(at, count)])

    def update(self, at: float, count: int) -> float:
        self.samples.append((at, count))
        while len(self.samples) > 2 and at - self.samples[1][0] >= self.window_s:
            self.samples.popleft()
        first_at, first_count = self.samples[0]
        return max(count - first_count, 0) / (at - first_at) if at > first_at else 0.0


def events_per_s(previous: Snapshot | None, current: Snapshot) -> float:
    """Clicks per second between two snapshots (from the recent buckets for the first one)."""
    if previous is None or current.at <= previous.at:
        return current.recent_events_per_s
    return max(current.total.clicks - previous.total.clicks, 0) / (current.at - previous.at)


def rates(counts: Counts) -> dict[str, float | None]:
    """HR@1/5/20 and MRR@20; None while no click has been scored."""
    if counts.scored == 0:
        return {name: None for name in ("hr@1", "hr@5", "hr@20", "mrr@20")}
    return dict(counts.rates())


def metrics_table(total: Counts, recent: Counts, events_per_s: float | None, version: str | None, *,
                  title: str = "sessionrec — online metrics", caption: str | None = None) -> Table:
    """The monitor's table: whole run and last minute side by side, then the stream's health."""
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    table.add_column("metric")
    table.add_column("whole run", justify="right")
    table.add_column("last minute", justify="right")
    table.add_row("clicks", f"{total.clicks:,}", f"{recent.clicks:,}")
    table.add_row("scored", f"{total.scored:,}", f"{recent.scored:,}")
    run_rates, recent_rates = rates(total), rates(recent)
    for name in ("hr@1", "hr@5", "hr@20", "mrr@20"):
        table.add_row(name.upper(), _rate(run_rates[name]), _rate(recent_rates[name]))
    table.add_section()
    table.add_row("events/s", "", "–" if events_per_s is None else f"{events_per_s:,.1f}")
    table.add_row("dead letters", f"{total.dead_letters:,}", f"{recent.dead_letters:,}")
    table.add_row("duplicates", f"{total.duplicates:,}", f"{recent.duplicates:,}")
    table.add_row("model version", version or "none yet", "")
    return table


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def snapshot_json(snapshot: Snapshot, events_per_s: float) -> dict[str, Any]:
    """Totals and rates as one JSON-ready object."""
    return {
        "time": snapshot.at,
        "model_version": snapshot.version,
        "events_per_s": events_per_s,
        "total": {**asdict(snapshot.total), **rates(snapshot.total)},
        "last_minute": {**asdict(snapshot.recent), **rates(snapshot.recent), "span_s": snapshot.recent_span_s},
    }


# --- reading Redis ---------------------------------------------------------------------------


async def read_once(settings: Settings) -> Snapshot:
    """One snapshot, or a one-line ConnectionError."""
    return await RedisStore.run(settings, lambda store: read_snapshot(store.metrics, store.registry), "reading the online metrics")


class Watch:
    """The live loop; keeps the last snapshot so Ctrl-C can still print a summary."""

    def __init__(self, settings: Settings, interval: float) -> None:
        self.settings = settings
        self.interval = interval
        self.first: Snapshot | None = None
        self.last: Snapshot | None = None
        self.last_rate = 0.0

    async def run(self) -> None:
        store = await RedisStore.open(self.settings)
        metrics, registry = store.metrics, store.registry
        console = Console()
        try:
            with Live(console=console, auto_refresh=False, transient=True) as live:
                while True:
                    caption = f"every {self.interval:g} s · Ctrl-C to stop"
                    try:
                        snapshot = await read_snapshot(metrics, registry)
                        self.last_rate = events_per_s(self.last, snapshot)
                        self.last = snapshot
                        self.first = self.first or snapshot
                    except (RedisError, OSError) as exc:  # keep watching: Redis may come back
                        caption = f"Redis at {self.settings.redis_shown} failed: {exc}; retrying"
                    if self.last is not None:
                        live.update(metrics_table(self.last.total, self.last.recent, self.last_rate, self.last.version,
                                                  caption=caption), refresh=True)
                    await asyncio.sleep(self.interval)
        finally:
            await store.close()
