"""`sessionrec bench stream`: end-to-end throughput and latency of the live pipeline, against a reference.

Throughput: synthetic clicks (200k over 20k sessions and ~15k items by
default) replayed as fast as the broker takes them; clicks/s is measured
from the first click produced to the last recommendation received. In the
same run the reference pipeline (stream.local.reference: a naive per-event
Faust agent with the same model, Redis state and output) serves the first
clicks the same way, so the ratio holds whatever else loads the machine.
Latency: clicks at steady rates, on fresh topics and workers; each click's
latency runs from the Kafka timestamp its producer gave it to the moment its
recommendation is read back. Workers are separate processes, as in
production; the broker and Redis run on this machine unless URLs are given.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from redis.asyncio import Redis
from rich.table import Table

from sessionrec.model import checkpoint
from sessionrec.model.data import ITEM, SESSION, TIME
from sessionrec.model.report import console
from sessionrec.replay.pacing import Pacing
from sessionrec.replay.replayer import replay
from sessionrec.replay.source import frame_records
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess
from sessionrec.stream.local.sizing import RedisCounters, Sizing, cpu_seconds, session_key_bytes
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.settings import Settings


@dataclass(frozen=True)
class LatencyRun:
    rate: float  # clicks/s, steady
    clicks: int
    p50_ms: float  # click produced -> recommendation received
    p99_ms: float
    max_ms: float
    serve_p50_ms: float  # of it: click produced -> recommendation computed in the worker
    serve_p99_ms: float

    @classmethod
    def of(cls, rate: float, recs: list) -> LatencyRun:  # noqa: ANN001 - harness.Received
        received = 1000.0 * np.array([r.at - r.rec["click_time"] for r in recs])
        served = 1000.0 * np.array([r.rec["served_at"] - r.rec["click_time"] for r in recs])
        return cls(rate, len(recs), float(np.percentile(received, 50)), float(np.percentile(received, 99)), float(received.max()),
                   float(np.percentile(served, 50)), float(np.percentile(served, 99)))


@dataclass(frozen=True)
class StreamBench:
    clicks: int
    sessions: int
    items: int
    workers: int
    clicks_per_s: float
    reference_clicks: int
    reference_clicks_per_s: float  # the naive per-event Faust agent, same model, state and output, same run
    latency: list[LatencyRun]  # one per steady rate
    sizing: Sizing  # what the throughput phase's clicks cost
    model_version: str

    @property
    def speedup(self) -> float:
        return self.clicks_per_s / self.reference_clicks_per_s

    def to_dict(self) -> dict:
        """The JSON record: the first latency run's figures also at the top (latency_p50_ms, latency_p99_ms)."""
        first = self.latency[0]
        return {**asdict(self), "speedup": self.speedup, "latency_rate": first.rate, "latency_p50_ms": first.p50_ms, "latency_p99_ms": first.p99_ms,
                "clicks_per_worker_core_s": self.sizing.clicks_per_worker_core_s, "clicks_per_redis_core_s": self.sizing.clicks_per_redis_core_s}


def synthetic_clicks(n: int, sessions: int, items: int, known: list[str], seed: int = 0) -> pd.DataFrame:
    """Clicks on a Zipf-like catalogue: the model's items first, then never-seen ones up to ``items``."""
    rng = np.random.default_rng(seed)
    catalogue = np.array(known[:items] + [f"new-{i}" for i in range(max(0, items - len(known)))])
    popularity = 1.0 / np.arange(1, len(catalogue) + 1) ** 0.8
    picks = rng.choice(len(catalogue), size=n, p=popularity / popularity.sum())
    owners = rng.integers(0, sessions, size=n)
    return pd.DataFrame({SESSION: np.char.add("bench-", owners.astype(str)), ITEM: catalogue[picks], TIME: time.time() + 0.01 * np.arange(n)})


@dataclass
class Phase:
    clicks_per_s: float  # from the first body click produced to the last recommendation received
    recs: list  # harness.Received: the body's recommendations as read
    sizing: Sizing | None = None  # measured when asked for


async def _phase(settings: Settings, warmup: pd.DataFrame, body: pd.DataFrame, workers: int, pacing: Pacing, *,
                 reference: bool = False, measure: bool = False) -> Phase:
    """Workers (or reference workers) on the phase's own topics: warm up, replay ``body``, wait for every recommendation.

    ``measure``: also what the body cost (stream.local.sizing), from after the
    warm-up to the last recommendation.
    """
    args = ("--reference",) if reference else ()
    procs = [WorkerProcess(settings, name=f"worker-{i}", args=args) for i in range(workers)]
    redis = Redis.from_url(settings.redis_url)

    def check() -> None:
        for proc in procs:
            proc.check()

    try:
        async with RecommendationReader(settings) as reader:
            await replay(warmup, topic=settings.clicks_topic, kafka=settings, progress=False)
            await reader.wait_for(len(warmup), timeout_s=120, check=check)  # workers up, groups joined
            before = set(reader.received)
            counters, cpu = await RedisCounters.read(redis), cpu_seconds(proc.process.pid for proc in procs)
            reading = asyncio.create_task(reader.wait_for(len(warmup) + len(body), timeout_s=600, check=check))
            started = time.time()
            await replay(body, topic=settings.clicks_topic, kafka=settings, pacing=pacing, progress=True)
            await reading
            phase = Phase(0.0, [r for k, r in reader.received.items() if k not in before])
            if measure:
                spent = cpu_seconds(proc.process.pid for proc in procs)
                after = await RedisCounters.read(redis)
                sessions = list(dict.fromkeys(body[SESSION].astype(str)))[:200]
                click_bytes = sum(len(key) + len(value) for key, value, _ in frame_records(body))
                phase.sizing = Sizing.of(len(body), spent - cpu if spent is not None and cpu is not None else None, counters, after,
                                         await session_key_bytes(redis, Keys(settings.redis_prefix), sessions),
                                         click_bytes + sum(r.size for r in phase.recs))
    finally:
        await redis.aclose()
        for proc in procs:
            proc.stop()
    phase.clicks_per_s = len(body) / (max(r.at for r in phase.recs) - started)
    return phase


def fresh_names(settings: Settings) -> Settings:
    """New topics, consumer group and Redis prefix, so runs and phases never mix (a long topic slows Tansu's fetches)."""
    return replace(settings.in_namespace(f"bench-{uuid.uuid4().hex[:8]}"), web_port=0)


def run_stream_bench(settings: Settings, *, clicks: int, sessions: int, items: int, workers: int, rates: list[float], latency_seconds: float,
                     reference_clicks: int) -> StreamBench:
    known = checkpoint.load(Path(settings.model_dir)).vocab.items
    data = synthetic_clicks(clicks + 200, sessions, items, known)
    main = asyncio.run(_phase(fresh_names(settings), data[:200], data[200:], workers, Pacing(), measure=True))
    body = data[200 : 200 + reference_clicks]
    reference = asyncio.run(_phase(fresh_names(settings), data[:200], body, workers, Pacing(), reference=True))
    latency = []
    for n, rate in enumerate(rates):
        steady = synthetic_clicks(int(rate * latency_seconds) + 200, sessions, items, known, seed=1 + n)
        steady_phase = asyncio.run(_phase(fresh_names(settings), steady[:200], steady[200:], workers, Pacing(rate=rate, tick_s=0.002)))
        latency.append(LatencyRun.of(rate, steady_phase.recs))
    assert main.sizing is not None
    return StreamBench(clicks=clicks, sessions=sessions, items=items, workers=workers, clicks_per_s=main.clicks_per_s, reference_clicks=len(body),
                       reference_clicks_per_s=reference.clicks_per_s, latency=latency, sizing=main.sizing,
                       model_version=main.recs[0].rec["model_version"])


def stream_table(result: StreamBench) -> Table:
    table = Table(title=f"Stream benchmark ({result.workers} worker(s), model {result.model_version}; {result.clicks:,} synthetic clicks, "
                        f"{result.sessions:,} sessions, ~{result.items:,} items)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("throughput, end to end (click produced -> recommendation received)", f"{result.clicks_per_s:,.0f} clicks/s")
    table.add_row(f"reference: naive per-event Faust agent, same run ({result.reference_clicks:,} clicks)", f"{result.reference_clicks_per_s:,.0f} clicks/s")
    table.add_row("speed-up over the reference", f"{result.speedup:.1f}x")
    for run in result.latency:
        table.add_row(f"latency at a steady {run.rate:,.0f} clicks/s ({run.clicks:,} clicks): p50 / p99 / max",
                      f"{run.p50_ms:.1f} / {run.p99_ms:.1f} / {run.max_ms:.0f} ms")
        table.add_row("  of which click produced -> recommendation computed, p50 / p99", f"{run.serve_p50_ms:.1f} / {run.serve_p99_ms:.1f} ms")
    size = result.sizing
    per_core = size.clicks_per_worker_core_s
    table.add_row("worker CPU: clicks per core-second", f"{per_core:,.0f}" if per_core else "n/a")
    table.add_row("Redis CPU: clicks per core-second", f"{size.clicks_per_redis_core_s:,.0f}" if size.clicks_per_redis_core_s else "n/a")
    table.add_row("Redis: commands / bytes on the wire per click", f"{size.redis_commands_per_click:.2f} / {size.redis_net_bytes_per_click:,.0f} B")
    table.add_row("Redis: memory per session (a session key's MEMORY USAGE)", f"{size.redis_memory_per_session:,.0f} B")
    table.add_row("broker: record bytes per click (click + recommendation)", f"{size.broker_bytes_per_click:,.0f} B")
    return table


def write_json(result: StreamBench, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2))


def print_result(result: StreamBench, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        console.print(stream_table(result))


@dataclass(frozen=True)
class InferenceBench:
    device: str
    batch: int
    items: int  # the network's
    step_ms: float  # GRU step + scoring over all items + top-k, one micro-batch
    rows_per_s: float
    max_state_diff: float | None  # against the CPU path, on the same inputs (None when this is the CPU)
    topk_agreement: float | None  # share of top-k lists identical to the CPU's


def run_inference_bench(model_dir: str, device: str, *, batch: int = 256, steps: int = 100, top_k: int = 20, history_len: int = 50) -> InferenceBench:
    """The inference stage alone, on random sessions; compared with the CPU when run elsewhere."""
    import torch

    from sessionrec.stream.worker.inference import Engine, history_matrix, pick_device

    blob, meta = checkpoint.to_bytes(checkpoint.load(Path(model_dir)))
    target = pick_device(device)
    engine = Engine(blob, meta, target, top_k)
    rng = np.random.default_rng(0)
    hidden = rng.normal(0, 0.3, (batch, engine.hidden_size)).astype(np.float32)
    items = rng.integers(0, engine.n_known + 100, batch)  # some items the model does not know
    history = history_matrix([rng.integers(0, engine.n_known + 100, rng.integers(1, history_len)).astype(np.int32) for _ in range(batch)], history_len)
    history[:, -1] = items
    engine.step(hidden, items, history)  # warm up (CUDA context, kernels)
    if target.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        state, recs = engine.step(hidden, items, history)  # returns host arrays: includes the copies back
    seconds = (time.perf_counter() - start) / steps
    diff = agreement = None
    if target.type != "cpu":
        cpu_state, cpu_recs = Engine(blob, meta, torch.device("cpu"), top_k).step(hidden, items, history)
        diff = float(np.abs(cpu_state - state).max())
        agreement = float(np.mean([(a == b).all() for a, b in zip(cpu_recs, recs)]))
    return InferenceBench(str(target), batch, engine.n_known, seconds * 1000, batch / seconds, diff, agreement)


def inference_table(result: InferenceBench) -> Table:
    table = Table(title=f"Inference stage, micro-batch {result.batch}, {result.items:,} items, {result.device}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("per micro-batch", f"{result.step_ms:.2f} ms")
    table.add_row("sessions/s", f"{result.rows_per_s:,.0f}")
    if result.max_state_diff is not None:
        table.add_row("max |state - CPU state|", f"{result.max_state_diff:.2e}")
        table.add_row("top-k lists equal to the CPU's", f"{result.topk_agreement:.1%}")
    return table
