"""Replays through real worker processes, against a Tansu and a Redis of the test's own (the fault and scale tests).

A test that kills, pauses or restarts a server, or adds and removes workers,
starts its own servers (so that it can act on their PIDs without touching the
other tests' servers) and replays the same clicks as a clean run. Learning
from the stream is off, so that every list is a function of the clicks alone
and a run can be compared list by list, keyed by the click's (partition,
offset), with the clean run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sessionrec.replay.pacing import Pacing
from sessionrec.replay.replayer import replay
from sessionrec.stream.local.harness import Received, RecommendationReader, WorkerProcess
from sessionrec.stream.local.servers import Service, start_redis, start_tansu
from sessionrec.stream.redis.connection import connect
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.settings import Settings

CLICKS = 500
RATE = 150.0  # clicks/s: the replay takes a few seconds, so that faults land mid-stream


class Servers:
    """A Tansu and a Redis of this test's own, which it may pause, kill and start again on the same port."""

    def __init__(self) -> None:
        self.tansu: Service = start_tansu()
        self.redis: Service = start_redis()

    def restart_redis(self) -> None:
        """Stop Redis (it keeps nothing on disk) and start an empty one where it was."""
        self.redis.stop()
        self.redis = start_redis(port=self.redis.port)

    def restart_tansu(self) -> None:
        """Stop the broker (memory storage: log, offsets and groups are gone) and start an empty one where it was."""
        self.tansu.stop()
        self.tansu = start_tansu(port=self.tansu.port)

    def settings(self, model: Path, **overrides: object) -> Settings:
        tag = uuid.uuid4().hex[:8]
        return Settings(kafka_bootstrap=self.tansu.url, redis_url=self.redis.url, namespace=f"fault-{tag}", model_dir=str(model),
                        **{"web_port": 0, "learn_online": False, **overrides})


@contextmanager
def servers() -> Iterator[Servers]:
    own = Servers()
    try:
        yield own
    finally:
        own.tansu.stop()
        own.redis.stop()


@dataclass
class Run:
    lists: dict[tuple[int, int], list[str]]  # (partition, offset) of the click -> the list answering it
    answered: dict[tuple[int, int], str]  # ... -> the clicked item the recommendation names
    served_by: dict[tuple[int, int], str]  # ... -> the worker that sent the (first) recommendation read (WorkerProcess.worker_id)
    counts: Counts
    workers: list[WorkerProcess]


Fault = Callable[[list[WorkerProcess]], Awaitable[None]]


async def stream(settings: Settings, clicks: pd.DataFrame, fault: Fault | None = None, at: float = 0.3, timeout_s: float = 120.0,
                 pacing: Pacing = Pacing(rate=RATE), workers: int = 1,
                 when: Callable[[list[WorkerProcess], dict[tuple[int, int], Received]], bool] | None = None) -> Run:
    """Replay ``clicks`` to ``workers`` workers; once ``at`` of them are answered, run ``fault``; wait for every answer.

    ``when(workers, received)``, if given, says instead when the fault is due.
    ``fault`` may start workers (append them) and stop some (remove them): the
    workers in the list are the ones checked to be alive, and stopped at the end.
    """
    running = [WorkerProcess(settings, name=f"worker-{i}") for i in range(workers)]
    due = when or (lambda _, received: len(received) >= int(at * len(clicks)))

    def check() -> None:
        for worker in running:
            worker.check()

    try:
        async with RecommendationReader(settings) as reader:
            sending = asyncio.create_task(replay(clicks, topic=settings.clicks_topic, kafka=settings, pacing=pacing, progress=False))
            if fault is not None:
                await reader.wait_until(lambda received: due(running, received), timeout_s, check, "the fault's moment")
                await fault(running)
            await reader.wait_for(len(clicks), timeout_s=timeout_s, check=check)
            await sending
            await asyncio.sleep(1.5)  # the last commits land
            check()
    finally:
        for worker in running:
            worker.stop()
    redis = await connect(settings)  # one Redis or a cluster, as the workers see it
    counts = await OnlineMetrics(redis, Keys(settings.redis_prefix, settings.partitions), settings.metrics_bucket_s).total()
    await redis.aclose()
    received = reader.received.items()
    return Run({k: [str(i) for i in r.rec["item_ids"]] for k, r in received}, {k: str(r.rec["item_id"]) for k, r in received},
               {k: r.rec["worker"] for k, r in received}, counts, running)
