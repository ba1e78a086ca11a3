"""Redis Cluster: every script in one slot, a worker pipeline on a three-master cluster as on one Redis, a retried commit, a slot that forgot."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.crc import key_slot

from sessionrec.model.neighbours import NeighbourRules, NeighbourTable
from sessionrec.stream.redis.connection import RedisForgot, connect
from sessionrec.stream.redis.keys import partition_of
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.worker.batch import Applier, Computed
from sessionrec.stream.worker.processor import Record
from tests.replays import stream
from tests.test_learning import ITEMS, learning_engine


class Recording(Redis):
    """A client that notes the KEYS of every script it runs."""

    scripted: list[list[str]]

    def register_script(self, script: Any) -> Any:
        real = super().register_script(script)

        async def run(keys: list[str], args: list[Any]) -> Any:
            self.scripted.append(list(keys))
            return await real(keys=keys, args=args)

        return run


def spanning(settings: Settings) -> list[Record]:
    """Two clicks of one session in every partition of the clicks topic, each where Kafka's default partitioner puts it."""
    sessions = {}
    for n in range(1000):
        sessions.setdefault(partition_of(f"s{n}", settings.partitions), f"s{n}")
    assert len(sessions) == settings.partitions
    return [Record(p, k, 1000 * k, s.encode(), json.dumps({"session_id": s, "item_id": ITEMS[2 * p + k], "ts": 1.0 + k}).encode())
            for p, s in sorted(sessions.items()) for k in range(2)]


async def _applier(settings: Settings, redis: Redis) -> tuple[RedisStore, Applier, Computed]:
    store = RedisStore.over(redis, settings)
    await store.vocab.seed(ITEMS)
    applier = Applier(settings, store)
    return store, applier, await applier.compute(spanning(settings), learning_engine(NeighbourTable(NeighbourRules(width=5))))


def test_every_script_of_a_batch_spanning_all_partitions_keeps_to_one_slot(redis_url):
    settings = Settings(redis_prefix=f"slots-{uuid.uuid4().hex[:8]}", top_k=5)

    async def go() -> list[list[str]]:
        redis = Recording.from_url(redis_url)
        redis.scripted = []
        store, applier, computed = await _applier(settings, redis)
        await applier.commit(computed, {})
        await store.vocab.items([0, 1])  # names of indices the cache holds: no script; forget it to look them up
        store.vocab.forget()
        await store.vocab.items([0, 1])
        await redis.aclose()
        return redis.scripted

    scripted = asyncio.run(go())
    slots = [{key_slot(key.encode()) for key in keys} for keys in scripted]
    assert all(len(one) == 1 for one in slots), [keys for keys, one in zip(scripted, slots) if len(one) > 1]
    commits = [keys for keys in scripted if any(":s:" in key for key in keys)]
    assert len(commits) == settings.partitions and len({key_slot(keys[0].encode()) for keys in commits}) == settings.partitions


def test_a_commit_cut_short_or_retried_on_a_cluster_writes_each_partition_once(redis_cluster_url):
    settings = Settings(redis_url=redis_cluster_url, redis_cluster=True, redis_prefix=f"retry-{uuid.uuid4().hex[:8]}", top_k=5)

    async def go() -> tuple[bool, bool, int, list[int], list[int], bool]:
        redis = await connect(settings)
        store, applier, computed = await _applier(settings, redis)
        keys = [store.keys.session(s, state.partition) for s, state in computed.outcome.changed.items()]
        cut = {p: computed.shares[p] for p in (0, 1)}  # the worker died after two partitions' scripts
        await store.commit(computed.number, computed.epoch, cut, {})
        first = await store.commit(computed.number, computed.epoch, computed.shares, {})  # the whole batch again
        states = await asyncio.gather(*(redis.get(key) for key in keys))
        again = await store.commit(computed.number, computed.epoch, computed.shares, {})  # the client retried
        total = await store.metrics.total()
        feeds = [await redis.xlen(store.keys.learning_feed(p)) for p in store.keys.every_partition()]
        marks = [(await store.partitions.mark(p)).offset for p in store.keys.every_partition()]
        unchanged = states == await asyncio.gather(*(redis.get(key) for key in keys))
        await redis.aclose()
        return first, again, total.clicks, feeds, marks, unchanged

    first, again, clicks, feeds, marks, unchanged = asyncio.run(go())
    assert first and not again and unchanged
    assert clicks == 2 * settings.partitions and feeds == [1] * settings.partitions and marks == [1] * settings.partitions


def test_a_replay_on_a_cluster_gives_the_lists_and_counters_of_one_redis(kafka_bootstrap, small_model, replayed_clicks, clean_run, redis_cluster_url):
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_cluster_url, redis_cluster=True, namespace=f"cluster-{uuid.uuid4().hex[:8]}",
                        model_dir=str(small_model), web_port=0, learn_online=False)
    run = asyncio.run(stream(settings, replayed_clicks))
    assert run.lists == clean_run.lists and run.counts == clean_run.counts


def test_a_partition_slot_that_forgot_gets_the_epoch_back_and_a_lost_global_slot_is_refused(redis_cluster_url):
    settings = Settings(redis_url=redis_cluster_url, redis_cluster=True, redis_prefix=f"loss-{uuid.uuid4().hex[:8]}", top_k=5)

    async def go() -> tuple[bool, bool, int, bool]:
        redis = await connect(settings)
        store, applier, computed = await _applier(settings, redis)
        await redis.delete(store.keys.epoch_copy(2))  # the node serving partition 2's slot restarted empty
        written = await store.commit(computed.number, computed.epoch, computed.shares, {})
        restored = await redis.get(store.keys.epoch_copy(2)) == computed.epoch.encode()
        clicks = (await store.metrics.total()).clicks
        await redis.delete(store.keys.epoch, store.keys.epoch_copy(3))  # now the global slot's node too: the vocabulary is gone
        try:
            await store.commit(store.commit.next_number(), computed.epoch, {3: computed.shares[3]}, {})
            refused = False
        except RedisForgot:
            refused = True
        await redis.aclose()
        return written, restored, clicks, refused

    written, restored, clicks, refused = asyncio.run(go())
    assert written and restored and clicks == 2 * settings.partitions and refused


def test_the_registry_trainer_record_heartbeats_and_partition_logs_work_on_a_cluster(redis_cluster_url):
    """Their transactions (a watched pointer move among them) and multi-key reads stay in one slot each."""
    settings = Settings(redis_url=redis_cluster_url, redis_cluster=True, redis_prefix=f"global-{uuid.uuid4().hex[:8]}")

    async def go() -> tuple[Any, ...]:
        store = await RedisStore.open(settings)
        await store.registry.seed(b"w1", {"version": "v1"})
        await store.registry.promote(b"w2", {"version": "v2"})
        moved = (await store.registry.pin("v1"), await store.registry.unpin(), await store.registry.history())
        await store.cycles.append({"cycle": 1})
        await store.workers.beat("w", {"partitions": [0]}, 3, 1e9)
        beats = ([b["worker"] for b in await store.workers.live(1e9)], await store.workers.lag(1e9, 1e9))
        logs = (await store.partitions.start_over(2), await store.partitions.incarnation(2), await store.partitions.mark(2))
        recent = await store.cycles.recent(5)
        await store.close()
        return moved, beats, logs, recent

    moved, beats, logs, recent = asyncio.run(go())
    assert moved == ("v2", "v1", ["v1", "v2"]) and beats == (["w"], [(1_000_000_000, 3)]) and logs == (1, 1, None) and recent == [{"cycle": 1}]
