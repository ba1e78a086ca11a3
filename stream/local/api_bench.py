"""`sessionrec bench api`: the API's latency at a fixed request rate, measured from outside by a load generator process.

Set-up: a fresh Redis prefix; the served model seeds its registry, and the
first N test clicks are applied through the worker's own micro-batch path
(stream.worker.batch, without Kafka), so the API reads real session states.
Then `sessionrec api` runs as a process, as in production, and for each
endpoint the load generator (stream.local.loadgen, another process) sends
requests at the rate asked for: GET the latest list of a seeded session;
POST a seeded session's last clicks. Latency runs from when a request was due
to its answer's last byte. Redis, the API and the load generator share this
machine's cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import torch
from rich.table import Table

from sessionrec.model.data import ITEM, SESSION, TIME
from sessionrec.model.report import console
from sessionrec.replay.source import frame_records
from sessionrec.stream.local.harness import WorkerProcess, wait_for_api
from sessionrec.stream.local.servers import HOST, free_port
from sessionrec.stream.redis.keys import partition_of
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.worker.batch import Applier
from sessionrec.stream.worker.processor import Record
from sessionrec.stream.worker.served import ServedModel

POST_ITEMS = 10  # a POST names a session's last clicks, at most this many


@dataclass(frozen=True)
class EndpointLatency:
    endpoint: str
    rate: float  # asked for, requests/s
    achieved_rate: float  # answered requests over the measured span
    requests: int
    errors: int  # failed connections and answers other than 200
    p50_ms: float  # from when the request was due to its answer
    p90_ms: float
    p99_ms: float
    max_ms: float
    service_p90_ms: float  # from when it was written to its answer


@dataclass(frozen=True)
class ApiBench:
    model_version: str
    sessions: int
    seconds: float  # measured per endpoint, after the warm-up
    api_workers: int  # API processes
    connections: int
    load_average: float  # of this machine (1 minute) when the runs ended: other work on the cores shows here
    endpoints: list[EndpointLatency]


async def serve_clicks(settings: Settings, clicks: pd.DataFrame) -> str:
    """Apply ``clicks`` to session states in Redis as a worker would (its batch path, no Kafka); the model version served."""
    store = await RedisStore.open(settings)
    try:
        engine = await ServedModel(settings, store, torch.device("cpu")).start()
        applier = Applier(settings, store)
        now_ms = int(time.time() * 1000)
        records = [Record(partition_of(key.decode(), settings.partitions), offset, now_ms, key, value)  # where Kafka would put them: the API looks there
                   for offset, (key, value, _) in enumerate(frame_records(clicks))]
        for start in range(0, len(records), settings.batch_size):
            computed = await applier.compute(records[start : start + settings.batch_size], engine)
            await applier.commit(computed, computed.latency(time.time()))
        return engine.version
    finally:
        await store.close()


def requests_for(clicks: pd.DataFrame, seed: int = 0) -> dict[str, list[list]]:
    """Per endpoint, the requests the load generator cycles through: every seeded session, in a shuffled order."""
    sessions = clicks.groupby(SESSION, sort=False)
    order = list(sessions.groups)
    random.Random(seed).shuffle(order)
    get = [["GET", f"/sessions/{quote(str(s), safe='')}/recommendations", None] for s in order]
    post = []
    for session in order:
        rows = sessions.get_group(session).tail(POST_ITEMS)
        post.append(["POST", "/recommend", {"item_ids": rows[ITEM].astype(str).tolist(), "ts": float(rows[TIME].iloc[-1])}])
    return {"GET /sessions/{id}/recommendations": get, "POST /recommend": post}


def load(port: int, requests: list[list], rate: float, seconds: float, warmup_s: float, connections: int) -> dict:
    """One run of the load generator process against the API on ``port``."""
    plan = {"host": HOST, "port": port, "rate": rate, "seconds": seconds, "warmup_s": warmup_s, "connections": connections, "requests": requests}
    done = subprocess.run([sys.executable, "-m", "sessionrec.stream.local.loadgen"], input=json.dumps(plan), capture_output=True, text=True,
                          timeout=seconds + warmup_s + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def summarise(endpoint: str, rate: float, raw: dict) -> EndpointLatency:
    latency, service = 1000.0 * np.array(raw["latency_s"]), 1000.0 * np.array(raw["service_s"])
    bad = sum(status != 200 for status in raw["status"]) + len(raw["errors"])
    p50, p90, p99 = (float(np.percentile(latency, q)) for q in (50, 90, 99))
    return EndpointLatency(endpoint, rate, len(latency) / raw["seconds"], len(latency), bad, p50, p90, p99, float(latency.max()),
                           float(np.percentile(service, 90)))


def run_api_bench(settings: Settings, clicks: pd.DataFrame, *, rate: float, seconds: float, warmup_s: float, connections: int) -> ApiBench:
    settings = replace(settings, redis_prefix=f"bench-api-{uuid.uuid4().hex[:8]}", api_port=free_port(), log_level="warning", web_port=0)
    version = asyncio.run(serve_clicks(settings, clicks))
    api = WorkerProcess(settings, name="api", command="api")
    try:
        wait_for_api(api, f"http://{HOST}:{settings.api_port}")
        endpoints = [summarise(name, rate, load(settings.api_port, requests, rate, seconds, warmup_s, connections))
                     for name, requests in requests_for(clicks).items()]
    finally:
        api.stop()
    return ApiBench(version, clicks[SESSION].nunique(), seconds, settings.api_workers, connections, os.getloadavg()[0], endpoints)


def api_table(result: ApiBench) -> Table:
    table = Table(title=f"API latency, {result.api_workers} API process(es), {result.sessions:,} sessions, model {result.model_version}, "
                        f"{result.seconds:g} s per endpoint",
                  caption=f"latency: from when a request was due to its answer's last byte; {result.connections} keep-alive connections; "
                          f"load average {result.load_average:.2f} on {os.cpu_count()} cores")
    for name in ("endpoint", "requests/s asked", "answered/s", "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms", "service p90 ms"):
        table.add_column(name, justify="left" if name == "endpoint" else "right")
    for e in result.endpoints:
        table.add_row(e.endpoint, f"{e.rate:,.0f}", f"{e.achieved_rate:,.0f}", f"{e.requests:,}", f"{e.errors:,}", f"{e.p50_ms:.2f}", f"{e.p90_ms:.2f}",
                      f"{e.p99_ms:.2f}", f"{e.max_ms:.1f}", f"{e.service_p90_ms:.2f}")
    return table


def write_json(result: ApiBench, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2))


def print_result(result: ApiBench, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result)))
    else:
        console.print(api_table(result))
