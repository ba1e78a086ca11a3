"""Faults against real processes: a killed worker, a Redis that forgets or stalls, a paused or reset broker, a poisoned state.

Each test starts its own Tansu and Redis (so that it can kill and pause them by
their PIDs without touching the other tests' servers), one or two worker
processes, and replays the same clicks. Learning from the stream is off here,
so that every list is a function of the clicks alone and a faulty run can be
compared list by list, keyed by the click's (partition, offset), with a clean
run of the same clicks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import aiohttp
import pytest
from redis.asyncio import Redis

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS
from sessionrec.model.data import data_dir
from sessionrec.model.protocol import load_split
from sessionrec.model.workflow import train_checkpoint
from sessionrec.replay.kafka.clients import start_consumer
from sessionrec.replay.pacing import Pacing
from sessionrec.replay.replayer import replay
from sessionrec.replay.source import load_stream
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess
from sessionrec.stream.local.servers import Service, free_port, start_redis, start_tansu
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.settings import Settings

CLICKS = 500
RATE = 150.0  # clicks/s: the replay takes a few seconds, so that faults land mid-stream


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    ckpt, _ = train_checkpoint(PRESETS["best"].updated(layers=[16], n_sample=64, epochs=1), load_split(), progress=False)
    folder = tmp_path_factory.mktemp("fault-model")
    checkpoint.save(ckpt, folder)
    return folder


@pytest.fixture(scope="module")
def clicks():
    return load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=CLICKS)


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

    def settings(self, model, **overrides) -> Settings:  # noqa: ANN001
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
    counts: Counts
    workers: list[WorkerProcess]


async def stream(settings: Settings, clicks, fault: Callable[[list[WorkerProcess]], Awaitable[None]] | None = None,  # noqa: ANN001
                 at: float = 0.3, timeout_s: float = 120.0, pacing: Pacing = Pacing(rate=RATE)) -> Run:
    """Replay ``clicks`` (at RATE) to one worker; once ``at`` of them are answered, run ``fault``; wait for every answer."""
    workers = [WorkerProcess(settings)]

    def check() -> None:
        for worker in workers:
            worker.check()

    try:
        async with RecommendationReader(settings) as reader:
            sending = asyncio.create_task(replay(clicks, topic=settings.clicks_topic, kafka=settings, pacing=pacing, progress=False))
            if fault is not None:
                await reader.wait_for(int(at * len(clicks)), timeout_s=timeout_s, check=check)
                await fault(workers)
            await reader.wait_for(len(clicks), timeout_s=timeout_s, check=check)
            await sending
            await asyncio.sleep(1.5)  # the last commits land
            check()
    finally:
        for worker in workers:
            worker.stop()
    redis = Redis.from_url(settings.redis_url)
    counts = await OnlineMetrics(redis, Keys(settings.redis_prefix), settings.metrics_bucket_s).total()
    await redis.aclose()
    return Run({k: [str(i) for i in r.rec["item_ids"]] for k, r in reader.received.items()},
               {k: str(r.rec["item_id"]) for k, r in reader.received.items()}, counts, workers)


@pytest.fixture(scope="module")
def clean(model, clicks) -> Run:
    with servers() as own:
        return asyncio.run(stream(own.settings(model), clicks))


def test_a_killed_worker_loses_nothing_and_changes_no_list(model, clicks, clean):
    async def kill(workers: list[WorkerProcess]) -> None:
        os.kill(workers[0].process.pid, signal.SIGKILL)
        workers[0].process.wait()
        workers.append(WorkerProcess(workers[0].settings, name="worker-again"))
        workers.pop(0)

    with servers() as own:
        run = asyncio.run(stream(own.settings(model), clicks, kill))
    assert run.lists == clean.lists  # every click answered (de-duplicated by partition and offset), each list as in the clean run


def test_a_poisoned_state_starts_its_session_afresh_and_stops_nothing(model, clicks, clean):
    with servers() as own:
        settings = own.settings(model)
        victim = clicks["session_id"].iloc[0]

        async def poison() -> None:
            client = Redis.from_url(settings.redis_url)
            await client.set(Keys(settings.redis_prefix).session(victim), b"\x00garbage that is no state")
            await client.aclose()

        asyncio.run(poison())
        run = asyncio.run(stream(settings, clicks))
    assert run.lists == clean.lists and run.counts.unreadable == 1 and run.counts.scored == clean.counts.scored


def test_a_paused_broker_is_waited_out(model, clicks, clean):
    with servers() as own:
        settings = own.settings(model, kafka_request_timeout_s=3.0)

        async def pause(workers: list[WorkerProcess]) -> None:
            os.kill(own.tansu.process.pid, signal.SIGSTOP)
            await asyncio.sleep(6.0)  # longer than the produce request timeout: sends fail and are made again
            os.kill(own.tansu.process.pid, signal.SIGCONT)

        run = asyncio.run(stream(settings, clicks, pause))
    assert run.lists == clean.lists


def test_a_stalled_redis_mid_commit_changes_no_counter(model):
    """Redis stops (SIGSTOP) for longer than the worker's socket timeout while it commits at full speed.

    The commit in flight times out and is sent again; when Redis resumes it runs
    both copies, which it had already received: only the first may change anything.
    """
    clicks = load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=6000)  # enough for the stall to land mid-stream at full speed
    with servers() as own:
        clean = asyncio.run(stream(own.settings(model), clicks, pacing=Pacing()))
        settings = own.settings(model, redis_socket_timeout_s=1.0)

        async def stall(workers: list[WorkerProcess]) -> None:
            os.kill(own.redis.process.pid, signal.SIGSTOP)
            await asyncio.sleep(3.0)
            os.kill(own.redis.process.pid, signal.SIGCONT)

        run = asyncio.run(stream(settings, clicks, stall, at=0.1, pacing=Pacing()))  # at full speed a commit is always on its way
    assert run.lists == clean.lists
    assert replace(run.counts, duplicates=0) == replace(clean.counts, duplicates=0)


def test_redis_that_forgets_everything_is_seeded_again_and_names_no_wrong_item(model, clicks):
    known = set(checkpoint.load(model).vocab.items) | set(clicks["item_id"])
    with servers() as own:
        settings = own.settings(model)

        async def forget(workers: list[WorkerProcess]) -> None:
            own.restart_redis()
            workers.append(WorkerProcess(settings, name="worker-started-after"))  # must start, not fail on the vocabulary

        run = asyncio.run(stream(settings, clicks, forget))
        assert all(worker.process.poll() is not None for worker in run.workers)  # stopped by us, not crashed (check() ran)
    by_position = {(p, o): item for p, o, item in _positions(settings, clicks)}
    assert len(run.answered) == len(clicks)
    assert all(run.answered[key] == by_position[key] for key in run.answered)  # each answer names the click it answers
    unreal = {key: set(items) - known for key, items in run.lists.items() if set(items) - known}
    assert not unreal  # lists name only real items


def _positions(settings: Settings, clicks):  # noqa: ANN001
    """(partition, offset, item) of every click as the replay placed it: keyed by session, in order, from offset 0."""
    from aiokafka.partitioner import DefaultPartitioner

    partitioner, partitions = DefaultPartitioner(), list(range(settings.partitions))
    next_offset: dict[int, int] = {}
    for session, item in zip(clicks["session_id"], clicks["item_id"]):
        p = partitioner(session.encode(), partitions, partitions)
        yield p, next_offset.get(p, 0), str(item)
        next_offset[p] = next_offset.get(p, 0) + 1


def test_a_broker_that_starts_over_has_its_clicks_answered_again(model, clicks):
    with servers() as own:
        settings = own.settings(model)
        worker = WorkerProcess(settings)
        try:
            async def once() -> int:
                async with RecommendationReader(settings) as reader:
                    await replay(clicks, topic=settings.clicks_topic, kafka=settings, progress=False)
                    await reader.wait_for(len(clicks), timeout_s=120, check=worker.check)
                    return len(reader.received)

            first = asyncio.run(once())
            own.restart_tansu()
            second = asyncio.run(once())  # the same clicks, at the same offsets, in a new log
            worker.check()
        finally:
            worker.stop()

        async def total() -> Counts:
            client = Redis.from_url(settings.redis_url)
            counts = await OnlineMetrics(client, Keys(settings.redis_prefix), settings.metrics_bucket_s).total()
            await client.aclose()
            return counts

        counts = asyncio.run(total())
    assert first == second == len(clicks) and counts.clicks == 2 * len(clicks)


async def _until_ready_is(settings: Settings, status: int, words: str, timeout_s: float = 30.0) -> dict:
    """Poll the worker's /ready until it answers ``status`` with ``words`` among its problems (or none, for 200)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{settings.web_port}/ready") as response:
                    body = await response.json()
                    if response.status == status and (words in " ".join(body["problems"]) if words else not body["problems"]):
                        async with http.get(f"http://127.0.0.1:{settings.web_port}/status") as alive:
                            assert alive.status == 200  # the process answers all along: only readiness tells
                        return body
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            assert asyncio.get_running_loop().time() < deadline, f"/ready never answered {status} {words!r}"
            await asyncio.sleep(0.2)


def test_a_stalled_worker_is_not_ready_until_it_goes_on(model, clicks, clean):
    with servers() as own:
        settings = own.settings(model, web_port=free_port(), ready_stall_s=2.0)

        async def stall(workers: list[WorkerProcess]) -> None:
            await _until_ready_is(settings, 200, "")
            os.kill(own.redis.process.pid, signal.SIGSTOP)  # batches cannot commit: the worker waits, clicks pile up
            try:
                body = await _until_ready_is(settings, 503, "stalled: no micro-batch finished")
            finally:
                os.kill(own.redis.process.pid, signal.SIGCONT)
            assert body["waiting"] > 0
            await _until_ready_is(settings, 200, "")

        run = asyncio.run(stream(settings, clicks, stall))
    assert run.lists == clean.lists


def test_a_worker_skipping_every_click_is_not_ready(model, clicks):
    """Offsets reset behind the workers' back: every click comes again, and is rightly skipped, but the stream serves nothing new."""
    with servers() as own:
        settings = own.settings(model, web_port=free_port())
        asyncio.run(stream(settings, clicks))

        async def reset_offsets() -> None:
            consumer = await start_consumer(settings, settings.clicks_topic, group=settings.consumer_group)  # the group's only member now
            try:
                while len(consumer.assignment()) < settings.partitions:
                    await consumer.getmany(timeout_ms=200)
                await consumer.commit(dict.fromkeys(consumer.assignment(), 0))
            finally:
                await consumer.stop()

        asyncio.run(reset_offsets())
        worker = WorkerProcess(settings, name="worker-after-reset")
        try:
            body = asyncio.run(_until_ready_is(settings, 503, f"skipping: {len(clicks):,} of the last {len(clicks):,} clicks"))
            worker.check()
        finally:
            worker.stop()
    assert len(body["problems"]) == 1
