"""Learning from the stream against real Redis (and, end to end, Tansu and a worker): once, in order, bounded."""

from __future__ import annotations

import asyncio
import json
import uuid

import torch
from redis.asyncio import Redis

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS
from sessionrec.model.neighbours import NeighbourRules, NeighbourTable
from sessionrec.model.network import GRU4Rec
from sessionrec.model.vocab import Vocabulary
from sessionrec.replay.replayer import replay
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.worker.batch import Applier
from sessionrec.stream.worker.inference import Engine
from sessionrec.stream.worker.learner import NeighbourLearner
from sessionrec.stream.worker.processor import Record

ITEMS = [f"i{i}" for i in range(30)]


def learning_engine(table: NeighbourTable) -> Engine:
    torch.manual_seed(0)
    config = PRESETS["best"].updated(layers=[8], neighbours=table.rules.width)
    ckpt = checkpoint.Checkpoint(net=GRU4Rec(config.network, len(ITEMS)), config=config, vocab=Vocabulary(ITEMS), neighbours=table)
    return Engine(*checkpoint.to_bytes(ckpt), torch.device("cpu"), top_k=5, neighbours=table)


def click(session: str, item: str, ts: float, offset: int) -> Record:
    return Record(0, offset, 1000 * offset, session.encode(), json.dumps({"session_id": session, "item_id": item, "ts": ts}).encode())


async def _applier(redis_url: str) -> tuple[Redis, RedisStore, Applier]:
    redis = Redis.from_url(redis_url)
    settings = Settings(redis_prefix=f"learn-{uuid.uuid4().hex[:8]}", top_k=5)
    store = RedisStore.over(redis, settings)
    await store.vocab.seed(ITEMS)
    return redis, store, Applier(settings, store)


def test_a_retried_commit_changes_no_counter_and_no_lesson(redis_url):
    async def go():
        redis, store, applier = await _applier(redis_url)
        engine = learning_engine(NeighbourTable(NeighbourRules(width=5)))
        computed = await applier.compute([click("a", "i1", 1.0, 0), click("a", "i2", 2.0, 1), click("b", "i3", 3.0, 2)], engine)
        first = await store.commit(computed.number, computed.epoch, computed.shares, {})
        again = await store.commit(computed.number, computed.epoch, computed.shares, {})  # the client retried
        total, entries = await store.metrics.total(), await redis.xlen(store.keys.learning_feed(0))
        await redis.aclose()
        return first, again, total, entries

    first, again, total, entries = asyncio.run(go())
    assert first and not again
    assert total.clicks == 3 and entries == 1


def test_a_redelivered_click_teaches_nothing_and_lessons_are_learned_once(redis_url):
    async def go():
        redis, store, applier = await _applier(redis_url)
        live = NeighbourTable(NeighbourRules(width=5))
        engine = learning_engine(live)
        records = [click("a", "i1", 1.0, 0), click("a", "i2", 2.0, 1)]
        await applier.commit(await applier.compute(records, engine), {})
        learner = NeighbourLearner(live, store.feed)
        learned = await learner.catch_up(block_ms=None)
        after_first = dict(live.row(1))
        redelivered = await applier.compute(records, engine)  # Kafka delivered them again after a crash
        await applier.commit(redelivered, {})
        await redis.xadd(store.keys.learning_feed(0), {"l": b"garbage"})  # a damaged lesson is skipped
        learned += await learner.catch_up(block_ms=None)
        learned_again = await learner.catch_up(block_ms=None)
        await redis.aclose()
        return learned, learned_again, after_first, dict(live.row(1)), redelivered, float(live.pop[1])

    learned, learned_again, after_first, after_all, redelivered, pop = asyncio.run(go())
    assert redelivered.counts.duplicates == 2 and redelivered.shares[0].lesson == b"" and redelivered.counts.clicks == 0
    assert after_first == {2: 1.0} and after_all == after_first and pop == 1.0
    assert learned == 2 and learned_again == 0  # the first lesson and the damaged one; nothing twice


def test_the_learning_feed_is_bounded(redis_url):
    async def go():
        redis, store, applier = await _applier(redis_url)
        store.commit.feed_len = 10
        engine = learning_engine(NeighbourTable(NeighbourRules(width=5)))
        for n in range(300):
            await applier.commit(await applier.compute([click(f"s{n}", "i1", 1.0, 2 * n), click(f"s{n}", "i2", 2.0, 2 * n + 1)], engine), {})
        length = await redis.xlen(store.keys.learning_feed(0))
        await redis.aclose()
        return length

    assert asyncio.run(go()) < 300 // 2  # MAXLEN ~ trims whole blocks: near the bound, far below the count


def test_an_item_first_seen_in_the_stream_is_recommended_once_its_context_repeats(kafka_bootstrap, redis_url, small_model):
    """One session clicks a known item, then a brand-new one; the next session that clicks the known item is offered the new one."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, namespace=f"new-{tag}", model_dir=str(small_model), web_port=0)
    known = checkpoint.load(small_model).vocab.item(0)

    async def go():
        worker = WorkerProcess(settings)
        try:
            async with RecommendationReader(settings) as reader:
                first = [{"session_id": "first", "item_id": known, "ts": 100.0}, {"session_id": "first", "item_id": "brand-new", "ts": 101.0}]
                await replay(first, topic=settings.clicks_topic, kafka=settings, progress=False)
                await reader.wait_for(2, timeout_s=90, check=worker.check)
                await asyncio.sleep(1.0)  # the commit, then the learning feed (polled every 0.2 s)
                await replay([{"session_id": "second", "item_id": known, "ts": 200.0}], topic=settings.clicks_topic, kafka=settings, progress=False)
                await reader.wait_for(3, timeout_s=30, check=worker.check)
        finally:
            worker.stop()
        return next(r.rec for r in reader.received.values() if r.rec["session_id"] == "second")

    second = asyncio.run(go())
    assert "brand-new" in [str(i) for i in second["item_ids"]]
