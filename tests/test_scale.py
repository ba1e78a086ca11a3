"""Scaling out and in mid-replay: workers that join, leave or die share the partitions, lose no click and apply none twice.

Real Tansu, Redis and worker processes (tests.replays). The replay is slow
enough that the change (a join, a SIGTERM, a SIGKILL) and the group's
rebalance land while clicks flow. Each run must equal the clean one-worker run
of the same clicks: every click answered with the same list (de-duplicated by
its partition and offset), and the same online counters, which would count a
click twice if it were applied twice. Each recommendation names the worker
that computed it, which tells who served what. Last, without processes: a
rebalance that cuts short a worker's check of a partition's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from redis.asyncio import Redis

from sessionrec.replay.kafka.clients import start_consumer
from sessionrec.replay.pacing import Pacing
from sessionrec.stream.local.harness import Received, WorkerProcess
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import Counts
from sessionrec.stream.redis.partitions import PartitionLog
from sessionrec.stream.settings import Settings
from sessionrec.stream.worker.ingress import ClickIngress
from tests.replays import Fault, Run, servers, stream

PACING = Pacing(rate=16.0)  # 31 s for the clicks: a worker starts and joins, or the group settles without one, well before the end
EVERY_PARTITION = set(range(Settings.partitions))
SESSION_TIMEOUT_S = 4.0  # of the consumer group: how soon a killed worker's partitions move on (Tansu: joins take half of it)


def served_by(run: Run, worker: WorkerProcess) -> set[int]:
    """The partitions whose clicks ``worker`` answered."""
    return {partition for (partition, _), name in run.served_by.items() if name == worker.worker_id}


def applied(counts: Counts) -> Counts:
    """The counters a click applied twice would change (redelivered clicks skipped are counted apart, and expected here)."""
    return replace(counts, duplicates=0)


def settled(workers: list[WorkerProcess], received: dict[tuple[int, int], Received]) -> bool:
    """Whether the first worker answered some clicks since the second one's first answer: both serve the group's latest assignment."""
    first, second = (worker.worker_id for worker in workers)
    start = min((got.rec["served_at"] for got in received.values() if got.rec["worker"] == second), default=None)
    return start is not None and sum(got.rec["worker"] == first and got.rec["served_at"] > start for got in received.values()) >= 10


def two_workers_then(model: Path, clicks: pd.DataFrame, fault: Fault, **overrides: object) -> Run:
    """Two workers serve the replay (with these settings); once both serve for a while, ``fault``."""
    with servers() as own:
        settings = own.settings(model, kafka_session_timeout_s=SESSION_TIMEOUT_S, **overrides)
        return asyncio.run(stream(settings, clicks, fault, pacing=PACING, workers=2, when=settled))


async def _applied_past_commit(worker: WorkerProcess, timeout_s: float = 20.0) -> None:
    """Wait until ``worker`` owns a partition whose last applied click (its Redis mark) lies past the group's committed offset.

    Those are the clicks a kill makes come again. Offsets are committed on
    rebalance only here, and the group may rebalance more than once as the
    workers join, so answers alone do not tell that any are left uncommitted.
    """
    settings = worker.settings
    keys = Keys(settings.redis_prefix, settings.partitions)
    redis, group = Redis.from_url(settings.redis_url), await start_consumer(settings, group=settings.consumer_group)  # reads, never joins
    try:
        for _ in range(int(timeout_s / 0.2)):
            beat = await redis.get(keys.worker(worker.worker_id))
            for partition in [int(p) for p in json.loads(beat)["partitions"]] if beat else []:
                mark = await PartitionLog(redis, keys).mark(partition)
                done = await group.committed(TopicPartition(settings.clicks_topic, partition))
                if mark is not None and (done is None or mark.offset >= done):
                    return
            await asyncio.sleep(0.2)
    finally:
        await redis.aclose()
        await group.stop()
    raise AssertionError(f"{worker.worker_id} never applied a click past the group's committed offsets within {timeout_s:.0f} s")


async def _gone(worker: WorkerProcess) -> None:
    """Wait for ``worker`` to exit without blocking the replay."""
    await asyncio.to_thread(worker.process.wait)


def test_a_worker_that_joins_mid_replay_takes_over_partitions(small_model, replayed_clicks, clean_run):
    async def join(workers: list[WorkerProcess]) -> None:
        workers.append(WorkerProcess(workers[0].settings, name="worker-joining"))

    with servers() as own:
        settings = own.settings(small_model, kafka_session_timeout_s=SESSION_TIMEOUT_S)
        run = asyncio.run(stream(settings, replayed_clicks, join, at=0.05, pacing=PACING))
    first, joined = run.workers
    assert run.lists == clean_run.lists and applied(run.counts) == applied(clean_run.counts)
    assert served_by(run, first) == EVERY_PARTITION and served_by(run, joined)  # partitions moved mid-replay


def test_a_worker_that_leaves_mid_replay_hands_over_its_partitions(small_model, replayed_clicks, clean_run):
    left: list[WorkerProcess] = []

    async def leave(workers: list[WorkerProcess]) -> None:
        left.append(workers.pop(0))
        left[0].process.send_signal(signal.SIGTERM)
        await _gone(left[0])

    run = two_workers_then(small_model, replayed_clicks, leave)
    [survivor] = run.workers
    assert left[0].process.returncode == 0  # a graceful stop
    assert run.lists == clean_run.lists and applied(run.counts) == applied(clean_run.counts)
    assert served_by(run, left[0]) and served_by(run, survivor) == EVERY_PARTITION


def test_a_worker_killed_mid_replay_has_its_partitions_taken_over(small_model, replayed_clicks, clean_run):
    killed: list[WorkerProcess] = []

    async def kill(workers: list[WorkerProcess]) -> None:
        await _applied_past_commit(workers[0])
        killed.append(workers.pop(0))
        os.kill(killed[0].process.pid, signal.SIGKILL)
        await _gone(killed[0])

    run = two_workers_then(small_model, replayed_clicks, kill, commit_interval_s=600.0)  # nothing committed to Kafka but on rebalance
    [survivor] = run.workers
    assert run.lists == clean_run.lists and applied(run.counts) == applied(clean_run.counts)
    assert run.counts.duplicates > 0  # the clicks the killed worker applied since the last rebalance came again, to the survivor: skipped (the guard at work)
    assert served_by(run, killed[0]) and served_by(run, survivor) == EVERY_PARTITION


class _Rebalanced:
    """A consumer whose read of a partition's last applied record is cut short by a rebalance that moves the partition on."""

    def __init__(self, ingress: ClickIngress, tp: TopicPartition) -> None:
        self.ingress, self.owned = ingress, {tp}

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    async def committed(self, tp: TopicPartition) -> int:
        return 3

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.owned:
            raise IllegalStateError(f"{tp} is not assigned")

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int, max_records: int) -> dict:
        self.ingress.revoking()  # the group rebalances meanwhile, and the partition goes to another worker
        self.owned.clear()
        return {}

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seek(tp, 0)


def test_a_rebalance_during_a_log_check_is_not_taken_for_a_log_that_started_over(redis_url):
    """An empty read of the last applied record says nothing when a rebalance cut it short: no new incarnation, the check is void."""
    settings = Settings(redis_url=redis_url, namespace=f"check-{uuid.uuid4().hex[:8]}")

    async def check() -> tuple[int, bool, set[TopicPartition]]:
        redis = Redis.from_url(redis_url)
        try:
            log = PartitionLog(redis, Keys(settings.redis_prefix))
            await redis.set(log.keys.mark(0), "5,1000,123")  # partition 0 applied a click at offset 5
            tp = TopicPartition(settings.clicks_topic, 0)
            ingress = ClickIngress(settings, SimpleNamespace(store=SimpleNamespace(partitions=log)), channel=None)
            ingress.consumer = _Rebalanced(ingress, tp)
            ingress.assigned([tp])
            await ingress._check_logs()
            return await log.incarnation(0), await log.mark(0) is not None, ingress._unchecked
        finally:
            await redis.aclose()

    incarnation, marked, unchecked = asyncio.run(check())
    assert incarnation == 0 and marked  # the log is the same log: its clicks stay duplicates of the applied ones
    assert unchecked == {TopicPartition(settings.clicks_topic, 0)}  # checked afresh if it comes back
