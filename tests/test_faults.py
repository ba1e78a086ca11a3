"""Faults against real processes: a killed worker, a Redis that forgets or stalls, a paused or reset broker, a poisoned state.

Each test starts its own Tansu and Redis, one or two worker processes, and
replays the same clicks as the clean run (tests.replays, conftest's clean_run).
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace

import aiohttp
from redis.asyncio import Redis

from sessionrec.model import checkpoint
from sessionrec.model.data import data_dir
from sessionrec.replay.kafka.clients import start_consumer
from sessionrec.replay.pacing import Pacing
from sessionrec.replay.replayer import replay
from sessionrec.replay.source import load_stream
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess
from sessionrec.stream.local.servers import free_port
from sessionrec.stream.redis.keys import Keys, partition_of
from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.settings import Settings
from tests.replays import servers, stream


def test_a_killed_worker_loses_nothing_and_changes_no_list(small_model, replayed_clicks, clean_run):
    async def kill(workers: list[WorkerProcess]) -> None:
        os.kill(workers[0].process.pid, signal.SIGKILL)
        workers[0].process.wait()
        workers.append(WorkerProcess(workers[0].settings, name="worker-again"))
        workers.pop(0)

    with servers() as own:
        run = asyncio.run(stream(own.settings(small_model), replayed_clicks, kill))
    assert run.lists == clean_run.lists  # every click answered (de-duplicated by partition and offset), each list as in the clean run


def test_a_poisoned_state_starts_its_session_afresh_and_stops_nothing(small_model, replayed_clicks, clean_run):
    with servers() as own:
        settings = own.settings(small_model)
        victim = replayed_clicks["session_id"].iloc[0]

        async def poison() -> None:
            client = Redis.from_url(settings.redis_url)
            await client.set(Keys(settings.redis_prefix).session(victim, partition_of(victim, settings.partitions)), b"\x00garbage that is no state")
            await client.aclose()

        asyncio.run(poison())
        run = asyncio.run(stream(settings, replayed_clicks))
    assert run.lists == clean_run.lists and run.counts.unreadable == 1 and run.counts.scored == clean_run.counts.scored


def test_a_paused_broker_is_waited_out(small_model, replayed_clicks, clean_run):
    with servers() as own:
        settings = own.settings(small_model, kafka_request_timeout_s=3.0)

        async def pause(workers: list[WorkerProcess]) -> None:
            os.kill(own.tansu.process.pid, signal.SIGSTOP)
            await asyncio.sleep(6.0)  # longer than the produce request timeout: sends fail and are made again
            os.kill(own.tansu.process.pid, signal.SIGCONT)

        run = asyncio.run(stream(settings, replayed_clicks, pause))
    assert run.lists == clean_run.lists


def test_a_stalled_redis_mid_commit_changes_no_counter(small_model):
    """Redis stops (SIGSTOP) for longer than the worker's socket timeout while it commits at full speed.

    The commit in flight times out and is sent again; when Redis resumes it runs
    both copies, which it had already received: only the first may change anything.
    """
    clicks = load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=6000)  # enough for the stall to land mid-stream at full speed
    with servers() as own:
        clean = asyncio.run(stream(own.settings(small_model), clicks, pacing=Pacing()))
        settings = own.settings(small_model, redis_socket_timeout_s=1.0)

        async def stall(workers: list[WorkerProcess]) -> None:
            os.kill(own.redis.process.pid, signal.SIGSTOP)
            await asyncio.sleep(3.0)
            os.kill(own.redis.process.pid, signal.SIGCONT)

        run = asyncio.run(stream(settings, clicks, stall, at=0.1, pacing=Pacing()))  # at full speed a commit is always on its way
    assert run.lists == clean.lists
    assert replace(run.counts, duplicates=0) == replace(clean.counts, duplicates=0)


def test_redis_that_forgets_everything_is_seeded_again_and_names_no_wrong_item(small_model, replayed_clicks):
    known = set(checkpoint.load(small_model).vocab.items) | set(replayed_clicks["item_id"])
    with servers() as own:
        settings = own.settings(small_model)

        async def forget(workers: list[WorkerProcess]) -> None:
            own.restart_redis()
            workers.append(WorkerProcess(settings, name="worker-started-after"))  # must start, not fail on the vocabulary

        run = asyncio.run(stream(settings, replayed_clicks, forget))
        assert all(worker.process.poll() is not None for worker in run.workers)  # stopped by us, not crashed (check() ran)
    by_position = {(p, o): item for p, o, item in _positions(settings, replayed_clicks)}
    assert len(run.answered) == len(replayed_clicks)
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


def test_a_broker_that_starts_over_has_its_clicks_answered_again(small_model, replayed_clicks):
    with servers() as own:
        settings = own.settings(small_model)
        worker = WorkerProcess(settings)
        try:
            async def once() -> int:
                async with RecommendationReader(settings) as reader:
                    await replay(replayed_clicks, topic=settings.clicks_topic, kafka=settings, progress=False)
                    await reader.wait_for(len(replayed_clicks), timeout_s=120, check=worker.check)
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
    assert first == second == len(replayed_clicks) and counts.clicks == 2 * len(replayed_clicks)


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


def test_a_stalled_worker_is_not_ready_until_it_goes_on(small_model, replayed_clicks, clean_run):
    with servers() as own:
        settings = own.settings(small_model, web_port=free_port(), ready_stall_s=2.0)

        async def stall(workers: list[WorkerProcess]) -> None:
            await _until_ready_is(settings, 200, "")
            os.kill(own.redis.process.pid, signal.SIGSTOP)  # batches cannot commit: the worker waits, clicks pile up
            try:
                body = await _until_ready_is(settings, 503, "stalled: no micro-batch finished")
            finally:
                os.kill(own.redis.process.pid, signal.SIGCONT)
            assert body["waiting"] > 0
            await _until_ready_is(settings, 200, "")

        run = asyncio.run(stream(settings, replayed_clicks, stall))
    assert run.lists == clean_run.lists


def test_a_worker_skipping_every_click_is_not_ready(small_model, replayed_clicks):
    """Offsets reset behind the workers' back: every click comes again, and is rightly skipped, but the stream serves nothing new."""
    with servers() as own:
        settings = own.settings(small_model, web_port=free_port())
        asyncio.run(stream(settings, replayed_clicks))

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
            body = asyncio.run(_until_ready_is(settings, 503, f"skipping: {len(replayed_clicks):,} of the last {len(replayed_clicks):,} clicks"))
            worker.check()
        finally:
            worker.stop()
    assert len(body["problems"]) == 1
