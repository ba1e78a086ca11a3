"""`sessionrec demo`: the whole pipeline on this machine, end to end.

Starts Tansu and Redis (unless given), trains a model if there is none,
starts the workers (and, with --trainer, the online trainer) as processes,
replays a click file, shows progress and online accuracy while it runs, and
ends with online figures next to the offline evaluation of the same model on
the same clicks. Everything it started is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from rich.console import Group
from rich.live import Live
from rich.table import Table

from sessionrec.model import checkpoint
from sessionrec.model.config import ServingConfig
from sessionrec.model.data import ITEM, sort_sessions
from sessionrec.model.evaluate import Report, served_report
from sessionrec.model.formats import Columns
from sessionrec.model.protocol import require_shared_catalogue
from sessionrec.model.report import console
from sessionrec.model.sessions import Sessions
from sessionrec.replay.pacing import Pacing
from sessionrec.replay.replayer import replay
from sessionrec.replay.source import load_stream
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess
from sessionrec.stream.redis.metrics import Counts
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.monitor import RateMeter, metrics_table, read_snapshot

RATE_WINDOW_S = 2.0  # the live events/s covers at least this many seconds, as `sessionrec monitor`'s refresh


@dataclass(frozen=True)
class DemoResult:
    clicks: int
    recommended: int
    seconds: float
    online: Counts
    offline: Report  # the served checkpoint, evaluated offline on the same clicks
    serving: ServingConfig  # the rules both applied
    versions: list[str]  # promoted model versions, newest first


def offline_report(settings: Settings, frame: pd.DataFrame) -> tuple[Report, ServingConfig]:
    """What `sessionrec evaluate --session-timeout` computes for the served checkpoint on exactly these clicks, by the worker's rules."""
    ckpt = checkpoint.load(Path(settings.model_dir))
    serving = replace(ckpt.config.serving, **settings.serving_overrides())
    vocab = ckpt.vocab.copy()
    sessions = Sessions.from_frame(sort_sessions(frame), vocab, serving.session_timeout)
    return served_report(ckpt.net, serving, sessions, len(vocab), neighbours=ckpt.neighbours), serving


async def run_demo(settings: Settings, csv: Path, columns: Columns, pacing: Pacing, limit: int | None, workers: int, trainer: bool,
                   timeout_s: float = 600.0) -> DemoResult:
    frame = load_stream(csv, columns, limit)
    require_shared_catalogue(checkpoint.load(Path(settings.model_dir)).vocab, frame[ITEM], f"the checkpoint {settings.model_dir}", str(csv),
                             "serve one trained on these clicks (sessionrec train --train FILE --test FILE --out DIR, then --model DIR)")
    procs = [WorkerProcess(settings, f"worker-{i}") for i in range(workers)]
    if trainer:
        procs.append(WorkerProcess(settings, "trainer", command="trainer"))

    def check() -> None:
        for proc in procs:
            proc.check()

    store = await RedisStore.open(settings)
    metrics, registry = store.metrics, store.registry
    started = time.monotonic()
    try:
        async with RecommendationReader(settings) as reader:
            sending = asyncio.create_task(replay(frame, topic=settings.clicks_topic, kafka=settings, pacing=pacing, progress=False))
            meter = RateMeter(RATE_WINDOW_S, time.time(), (await metrics.total()).clicks)
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                while len(reader.received) < len(frame):
                    if time.monotonic() - started > timeout_s:
                        raise TimeoutError(f"only {len(reader.received):,} of {len(frame):,} recommendations within {timeout_s:.0f} s")
                    if sending.done():
                        sending.result()  # a failed replay ends the demo with its error
                    check()
                    await reader.poll(timeout_ms=250)
                    snapshot = await read_snapshot(metrics, registry)
                    rate = meter.update(snapshot.at, snapshot.total.clicks)
                    live.update(Group(progress_line(len(frame), snapshot.total.clicks, len(reader.received), time.monotonic() - started),
                                      metrics_table(snapshot.total, snapshot.recent, rate, snapshot.version)))
            await sending
            online, versions = await metrics.total(), await registry.history()
    finally:
        for proc in procs:
            proc.stop()
        await store.close()
    offline, serving = offline_report(settings, frame)
    return DemoResult(len(frame), len(reader.received), time.monotonic() - started, online, offline, serving, versions)


def watch_lines(settings: Settings) -> list[str]:
    """Where a demo's messages and keys live, and the commands that watch them from another shell while it runs."""
    return [
        f"topics {settings.clicks_topic}, {settings.recs_topic}, {settings.dlq_topic}; Redis key prefix {settings.redis_prefix}",
        f"watch from another shell: sessionrec monitor --redis-url {settings.redis_shown} --redis-prefix {settings.redis_prefix}",
        f"                          sessionrec tail --bootstrap {settings.kafka_bootstrap} --topic {settings.recs_topic}",
    ]


def progress_line(clicks: int, applied: int, received: int, seconds: float) -> str:
    return f"[bold]{applied:,}[/] of {clicks:,} clicks applied, {received:,} recommendations received, {seconds:.0f} s"


def summary_table(result: DemoResult) -> Table:
    timeout_s = result.serving.session_timeout
    o, rates = result.offline.overall, result.online.rates()
    served = "same model" if len(result.versions) <= 1 else f"the first of {len(result.versions)} models served"
    table = Table(title=f"Online (stream) vs offline (`sessionrec evaluate --session-timeout {timeout_s:g}`): {served}, same clicks")
    for name in ("", "targets", "HR@1 / acc@1", "HR@5 / R@5", "HR@20 / R@20", "MRR@20"):
        table.add_column(name, justify="left" if not name else "right")
    table.add_row("online", f"{result.online.scored:,}", f"{rates['hr@1']:.4f}", f"{rates['hr@5']:.4f}", f"{rates['hr@20']:.4f}", f"{rates['mrr@20']:.4f}")
    table.add_row("offline", f"{o.targets:,}", f"{o.accuracy_at_1:.4f}", f"{o.recall_at_5:.4f}", f"{o.recall_at_20:.4f}", f"{o.mrr_at_20:.4f}")
    return table
