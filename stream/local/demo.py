"""`sessionrec demo`: the whole pipeline on this machine, end to end.

Starts Tansu and Redis (unless given), trains a model if there is none,
starts the workers (and, with --trainer, the online trainer) as processes and
the dashboard in this process, replays a click file, shows progress and
online accuracy while it runs, writes a run report (HTML and PNG) and ends
with online figures next to the offline evaluation of the same model on the
same clicks. Everything it started is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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
from sessionrec.replay.source import load_stream
from sessionrec.stream.local.harness import run_stream
from sessionrec.stream.redis.metrics import Counts
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.dashboard import Dashboard
from sessionrec.stream.watch.monitor import RateMeter, metrics_table, read_snapshot
from sessionrec.stream.watch.report import write_report
from sessionrec.stream.watch.timeline import read_timeline

RATE_WINDOW_S = 2.0  # the live events/s covers at least this many seconds, as `sessionrec monitor`'s refresh
LOCAL_LEARNING = {"learn_online": True, "trainer_interval_s": 0.0, "trainer_every_clicks": 5000}  # counted in clicks: any speed learns alike


@dataclass(frozen=True)
class DemoResult:
    clicks: int
    recommended: int
    seconds: float
    online: Counts
    offline: Report  # the served checkpoint, evaluated offline on the same clicks
    serving: ServingConfig  # the rules both applied
    versions: list[str]  # model versions served, the most recently current first
    dashboard: str | None  # the URL it was served on
    report: tuple[Path, Path] | None  # the run report: HTML, PNG


def offline_report(settings: Settings, frame: pd.DataFrame) -> tuple[Report, ServingConfig]:
    """What `sessionrec evaluate --session-timeout` computes for the served checkpoint on exactly these clicks, by the worker's rules."""
    ckpt = checkpoint.load(Path(settings.model_dir))
    serving = settings.serving_rules(ckpt.config.serving)
    vocab = ckpt.vocab.copy()
    sessions = Sessions.from_frame(sort_sessions(frame), vocab, serving.session_timeout)
    return served_report(ckpt.net, serving, sessions, len(vocab), neighbours=ckpt.neighbours), serving


async def run_demo(settings: Settings, csv: Path, columns: Columns, pacing: Pacing, limit: int | None, workers: int, trainer: bool, *,
                   dashboard_port: int | None = None, report_dir: Path | None = None, timeout_s: float = 600.0) -> DemoResult:
    """The demo's run; ``dashboard_port`` None serves no dashboard (0: any free port), ``report_dir`` None writes no report."""
    frame = load_stream(csv, columns, limit)
    require_shared_catalogue(checkpoint.load(Path(settings.model_dir)).vocab, frame[ITEM], f"the checkpoint {settings.model_dir}", str(csv),
                             "serve one trained on these clicks (sessionrec train --train FILE --test FILE --out DIR, then --model DIR)")
    store = await RedisStore.open(settings)
    board = Dashboard(store, window_s=timeout_s, refresh_s=1.0, title="sessionrec demo")
    started, began = time.monotonic(), time.time()
    try:
        url = await _serve(board, dashboard_port) if dashboard_port is not None else None
        if url:
            console.print(f"dashboard: {url}")
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            meter: RateMeter | None = None

            async def show(received: int, store: RedisStore) -> None:
                nonlocal meter
                snapshot = await read_snapshot(store.metrics, store.registry)
                meter = meter or RateMeter(RATE_WINDOW_S, snapshot.at, snapshot.total.clicks)
                rate = meter.update(snapshot.at, snapshot.total.clicks)
                live.update(Group(progress_line(len(frame), snapshot.total.clicks, received, time.monotonic() - started),
                                  metrics_table(snapshot.total, snapshot.recent, rate, snapshot.version)))

            run = await run_stream(settings, frame, pacing, workers=workers, trainer=trainer, timeout_s=timeout_s, on_poll=show)
        seconds = time.monotonic() - started
        report = None
        if report_dir is not None:
            timeline = await read_timeline(store, time.time() - began + settings.metrics_bucket_s, filling=True)
            report = write_report(timeline, report_dir, f"sessionrec demo: {len(frame):,} clicks of {csv.name}, {workers} worker(s)"
                                                        f"{', trainer' if trainer else ''}")
    finally:
        await board.stop()
        await store.close()
    offline, serving = offline_report(settings, frame)
    return DemoResult(run.clicks, run.recommended, seconds, run.online, offline, serving, run.versions, url, report)


async def _serve(board: Dashboard, port: int) -> str:
    """Serve the dashboard on ``port``, or on a free one when that is taken."""
    try:
        return await board.start("127.0.0.1", port)
    except ConnectionError:
        return await board.start("127.0.0.1", 0)


def watch_lines(settings: Settings) -> list[str]:
    """Where a demo's messages and keys live, and the commands that watch them from another shell while it runs."""
    return [
        f"topics {settings.clicks_topic}, {settings.recs_topic}, {settings.dlq_topic}; Redis key prefix {settings.redis_prefix}",
        f"watch from another shell: sessionrec monitor --redis-url {settings.redis_shown} --redis-prefix {settings.redis_prefix}",
        f"                          sessionrec tail --bootstrap {settings.kafka_bootstrap} --topic {settings.recs_topic}",
    ]


def progress_line(clicks: int, applied: int, received: int, seconds: float) -> str:
    return f"[bold]{applied:,}[/] of {clicks:,} clicks applied, {received:,} recommendations received, {seconds:.0f} s"


def summary_table(result: DemoResult, learning: bool) -> Table:
    timeout_s = result.serving.session_timeout
    o, rates = result.offline.overall, result.online.rates()
    served = f"{len(result.versions)} model version(s) served" if learning else "the same model"
    table = Table(title=f"Online (stream{', learning' if learning else ''}) vs offline (the static model, `sessionrec evaluate "
                        f"--session-timeout {timeout_s:g}`): {served}, same clicks")
    for name in ("", "targets", "HR@1 / acc@1", "HR@5 / R@5", "HR@20 / R@20", "MRR@20"):
        table.add_column(name, justify="left" if not name else "right")
    online = "online, learning" if learning else "online"
    table.add_row(online, f"{result.online.scored:,}", f"{rates['hr@1']:.4f}", f"{rates['hr@5']:.4f}", f"{rates['hr@20']:.4f}", f"{rates['mrr@20']:.4f}")
    table.add_row("offline, static", f"{o.targets:,}", f"{o.accuracy_at_1:.4f}", f"{o.recall_at_5:.4f}", f"{o.recall_at_20:.4f}", f"{o.mrr_at_20:.4f}")
    return table
