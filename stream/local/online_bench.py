"""`sessionrec bench online`: does learning from the stream pay, at any replay speed, and at what cost in speed?

Four runs over the same clicks (the whole test file by default), each
prequentially scored (every list against the session's next click):

- ``off``: the real pipeline (broker, Redis, worker) serving the model as trained;
- ``on-max``: the same with learning on (the workers' item neighbours and the
  online trainer, cadence in answered clicks), replayed as fast as it goes;
- ``on-scaled``: learning on, replayed at ``speed`` times real time;
- ``heuristic``: heuristic H (model.heuristic), the online baseline, replayed
  in this process over the same clicks after learning the training file.

Pipeline runs use fresh topics, consumer groups and Redis keys, so nothing
one run learned reaches another.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table

from sessionrec.model.evaluate import Metrics
from sessionrec.model.heuristic import HeuristicH
from sessionrec.replay.pacing import Pacing
from sessionrec.stream.local.bench import fresh_names
from sessionrec.stream.local.demo import LOCAL_LEARNING
from sessionrec.stream.local.harness import run_stream
from sessionrec.stream.settings import Settings


@dataclass(frozen=True)
class OnlineRun:
    run: str  # off, on-max, on-scaled, heuristic
    hr_1: float
    hr_5: float
    hr_20: float
    mrr_20: float
    scored: int
    promotions: int
    clicks_per_s: float  # recommendations received per second of the run (for the heuristic: clicks replayed per second here)
    seconds: float

    def to_dict(self) -> dict[str, float | int | str]:
        d = asdict(self)
        return {"run": self.run, "hr@1": d["hr_1"], "hr@5": d["hr_5"], "hr@20": d["hr_20"], "mrr@20": d["mrr_20"], "scored": self.scored,
                "promotions": self.promotions, "clicks_per_s": self.clicks_per_s, "seconds": self.seconds}


def run_online_bench(settings: Settings, stream: pd.DataFrame, train: pd.DataFrame, speed: float) -> list[OnlineRun]:
    runs = [
        _pipeline("off", replace(settings, learn_online=False), stream, Pacing(), trainer=False),
        _pipeline("on-max", replace(settings, **LOCAL_LEARNING), stream, Pacing(), trainer=True),
        _pipeline("on-scaled", replace(settings, **LOCAL_LEARNING), stream, Pacing(speed=speed), trainer=True),
    ]
    return [*runs, heuristic_run(stream, train)]


def _pipeline(name: str, settings: Settings, stream: pd.DataFrame, pacing: Pacing, trainer: bool) -> OnlineRun:
    run = asyncio.run(run_stream(fresh_names(settings), stream, pacing, trainer=trainer, timeout_s=1800.0))
    rates = run.online.rates()
    return OnlineRun(name, rates["hr@1"], rates["hr@5"], rates["hr@20"], rates["mrr@20"], run.online.scored, max(len(run.versions) - 1, 0),
                     run.clicks_per_s, run.seconds)


def heuristic_run(stream: pd.DataFrame, train: pd.DataFrame) -> OnlineRun:
    started = time.perf_counter()
    heuristic = HeuristicH()
    heuristic.learn_sessions(train)
    ranks = heuristic.replay(stream)
    seconds = time.perf_counter() - started
    m = Metrics.from_ranks(np.where(ranks > 0, ranks, np.iinfo(np.int64).max))
    return OnlineRun("heuristic", m.accuracy_at_1, m.recall_at_5, m.recall_at_20, m.mrr_at_20, m.targets, 0, len(stream) / seconds, seconds)


def online_table(runs: list[OnlineRun]) -> Table:
    by_name = {r.run: r for r in runs}
    ratio = by_name["on-max"].clicks_per_s / by_name["off"].clicks_per_s if by_name["off"].clicks_per_s else 0.0
    table = Table(title="Online accuracy over the replay, prequential (each list against the session's next click)",
                  caption=f"serving speed with learning on at max speed: {ratio:.0%} of learning off")
    for name in ("run", "HR@1", "HR@5", "HR@20", "MRR@20", "scored", "promotions", "clicks/s", "s"):
        table.add_column(name, justify="left" if name == "run" else "right")
    for r in runs:
        table.add_row(r.run, f"{r.hr_1:.4f}", f"{r.hr_5:.4f}", f"{r.hr_20:.4f}", f"{r.mrr_20:.4f}", f"{r.scored:,}", f"{r.promotions}",
                      f"{r.clicks_per_s:,.0f}", f"{r.seconds:.0f}")
    return table


def write_json(runs: list[OnlineRun], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.to_dict() for r in runs], indent=2))
