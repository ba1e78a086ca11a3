"""The online trainer against a real Redis: window bounds, fine-tune, guarded promotion."""

import asyncio
import json
import uuid

import numpy as np
import torch
from redis.asyncio import Redis

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS, NetworkConfig
from sessionrec.model.network import GRU4Rec
from sessionrec.model.vocab import Vocabulary
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.registry import ModelRegistry
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.redis.vocabulary import SharedVocabulary
from sessionrec.stream.settings import Settings
from sessionrec.stream.trainer.cycle import Trainer
from sessionrec.stream.trainer.window import SessionWindow


def test_window_keeps_the_most_recently_active_sessions_and_their_last_clicks():
    window = SessionWindow(max_sessions=2, max_clicks=3)
    for n, session in enumerate("aabbbbc"):
        window.add(session, f"i{n}", float(n))
    assert len(window) == 2  # a was the least recently active when c arrived
    assert [[item for item, _ in clicks] for clicks in window.sessions()] == [["i3", "i4", "i5"]]  # b, capped; c has one click
    window.add("b", "i7", 7.0)
    window.add("d", "i8", 8.0)  # evicts c, now the least recently active
    window.add("d", "i9", 9.0)
    assert [[item for item, _ in clicks] for clicks in window.sessions()] == [["i4", "i5", "i7"], ["i8", "i9"]]


def rec(session, item, ts, offset=0):
    return json.dumps({"session_id": session, "item_id": item, "ts": ts, "item_ids": [], "model_version": "v", "partition": 0, "offset": offset}).encode()


def test_a_fine_tune_that_learns_new_items_is_promoted(redis_url):
    async def go():
        redis = Redis.from_url(redis_url)
        keys = Keys(f"trainer-{uuid.uuid4().hex[:8]}")
        settings = Settings(redis_prefix=keys.prefix, trainer_min_sessions=10, trainer_epochs=4, trainer_holdout=0.25, trainer_min_new_clicks=1)
        torch.manual_seed(0)
        config = PRESETS["official"].updated(layers=[16], n_sample=8, lr=0.2)
        known = [f"old-{i}" for i in range(20)]
        start = checkpoint.Checkpoint(net=GRU4Rec(NetworkConfig(layers=[16]), 20), config=config, vocab=Vocabulary(known))
        await SharedVocabulary(redis, keys).seed(known)
        registry = ModelRegistry(redis, keys)
        first = await registry.seed(*checkpoint.to_bytes(start))
        trainer = Trainer(settings, RedisStore.over(redis, settings))
        for s in range(60):  # every session walks new-0 -> new-1 -> new-2, items the served model cannot recommend
            for step in range(3):
                trainer.observe(rec(f"s{s}", f"new-{step}", 100.0 * s + step, offset=3 * s + step))
        cycle = await trainer.cycle()
        current = await registry.current()
        blob, meta = await registry.load(current)
        await redis.aclose()
        return first, cycle, current, meta

    first, cycle, current, meta = asyncio.run(go())
    assert cycle.items == 23 and cycle.served_mrr == 0.0 and cycle.tuned_mrr > 0.5
    assert cycle.promoted == current != first
    assert meta["parent"] == first and meta["n_items"] == 23 and meta["vocab_size"] == 23


def test_too_few_sessions_means_no_cycle(redis_url):
    async def go():
        redis = Redis.from_url(redis_url)
        settings = Settings(redis_prefix=f"t-{uuid.uuid4().hex[:6]}", trainer_min_sessions=5)
        trainer = Trainer(settings, RedisStore.over(redis, settings))
        trainer.observe(rec("a", 1, 0.0, offset=0))
        trainer.observe(rec("a", 2, 1.0, offset=1))
        result = await trainer.cycle()
        await redis.aclose()
        return result

    assert asyncio.run(go()) is None


def test_a_redelivered_recommendation_is_not_learned_twice():
    window = SessionWindow(max_sessions=10, max_clicks=10)
    assert window.add("a", "i1", 1.0, partition=0, offset=5) and window.add("a", "i2", 2.0, partition=0, offset=6)
    assert not window.add("a", "i1", 1.0, partition=0, offset=5)  # Kafka delivered it again
    assert window.add("b", "i9", 1.5, partition=1, offset=5)  # another partition's offsets are its own
    assert window.added == 3 and [[i for i, _ in c] for c in window.sessions()] == [["i1", "i2"]]


def test_the_time_split_holds_out_sessions_newer_than_every_training_click():
    from sessionrec.stream.trainer.window import split_by_time

    sessions = [[(f"i{s}", 10.0 * s + k) for k in range(4)] for s in range(10)]  # session s runs from 10 s to 10 s + 3
    sessions[2].append(("late", 95.0))  # an old session that is still active after the cut
    split = split_by_time(sessions, holdout=0.3)
    assert split.cut == 70.0 and [c[0][1] for c in split.valid] == [70.0, 80.0, 90.0]
    assert max(t for clicks in split.train for _, t in clicks) < split.cut
    assert ("late", 95.0) not in split.train[2]  # its click after the cut is not trained on


async def _trainer_on(redis_url, served_sessions, **overrides):
    """A trainer whose served model already knows the pattern of ``served_sessions`` (item lists)."""
    redis = Redis.from_url(redis_url)
    keys = Keys(f"gate-{uuid.uuid4().hex[:8]}")
    settings = Settings(redis_prefix=keys.prefix, trainer_min_sessions=10, trainer_epochs=2, trainer_holdout=0.25, **overrides)
    from sessionrec.model.sessions import Sessions
    from sessionrec.model.train import train

    known = [f"i{i}" for i in range(12)]
    config = PRESETS["official"].updated(layers=[16], n_sample=8, lr=0.2, epochs=30)
    vocab = Vocabulary(known)
    items = [vocab.index(i) for s in served_sessions for i in s]
    offsets = np.cumsum([0, *map(len, served_sessions)])
    fresh = np.zeros(len(items), dtype=bool)
    fresh[offsets[:-1]] = True
    net, _ = train(config, Sessions(np.array(items), offsets, fresh, np.arange(len(served_sessions))), len(known), progress=False)
    store = RedisStore.over(redis, settings)
    await store.vocab.seed(known)
    first = await store.registry.seed(*checkpoint.to_bytes(checkpoint.Checkpoint(net=net, config=config, vocab=vocab)))
    return redis, store, Trainer(settings, store), first


def test_the_gate_keeps_the_served_model_when_the_candidate_is_not_better(redis_url):
    """Old sessions are noise, newer ones follow the pattern the served model knows: tuning on noise cannot win."""
    rng = np.random.default_rng(0)
    pattern = ["i0", "i1", "i2", "i3"]

    async def go():
        redis, store, trainer, first = await _trainer_on(redis_url, [pattern] * 40, trainer_min_new_clicks=1)
        offset = 0
        for s in range(60):
            clicks = pattern if s >= 45 else [f"i{i}" for i in rng.integers(4, 12, size=4)]
            for step, item in enumerate(clicks):
                trainer.observe(rec(f"s{s}", item, 100.0 * s + step, offset=offset))
                offset += 1
        cycle = await trainer.cycle()
        records = await store.cycles.recent(5)
        current = await store.registry.current()
        await redis.aclose()
        return cycle, records, current, first

    cycle, records, current, first = asyncio.run(go())
    assert cycle.decision == "kept" and cycle.tuned_mrr <= cycle.served_mrr and current == first
    assert records[0]["decision"] == "kept" and records[0]["parent"] == first and records[0]["served"]["mrr@20"] == cycle.served_mrr


def test_no_cycle_without_new_clicks(redis_url):
    async def go():
        redis, store, trainer, first = await _trainer_on(redis_url, [["i0", "i1", "i2"]] * 10, trainer_min_new_clicks=50)
        for s in range(60):  # a pattern the served model has never seen: fine-tuning wins
            for step in range(3):
                trainer.observe(rec(f"s{s}", f"i{5 + step}", 100.0 * s + step, offset=3 * s + step))
        first_cycle = await trainer.cycle()
        again = await trainer.cycle()  # nothing new since: no cycle, no promotion
        for s in range(60, 70):
            for step in range(3):
                trainer.observe(rec(f"s{s}", f"i{5 + step}", 100.0 * s + step, offset=3 * s + step))
        too_few = await trainer.cycle()  # 30 new clicks < 50
        history = await store.registry.history()
        records = await store.cycles.recent(10)
        await redis.aclose()
        return first_cycle, again, too_few, history, records

    first_cycle, again, too_few, history, records = asyncio.run(go())
    assert first_cycle.decision == "promoted" and first_cycle.new_clicks == 180
    assert again is None and too_few is None
    assert len(history) == 2 and len(records) == 1


def test_a_pinned_version_is_never_promoted_over(redis_url):
    async def go():
        redis, store, trainer, first = await _trainer_on(redis_url, [["i0", "i1", "i2"]] * 10, trainer_min_new_clicks=1)

        def observe(sessions):
            for s in sessions:  # a pattern the served model has never seen: fine-tuning wins
                for step in range(3):
                    trainer.observe(rec(f"s{s}", f"i{5 + step}", 100.0 * s + step, offset=3 * s + step))

        await store.registry.pin(first)
        observe(range(60))
        pinned = await trainer.cycle()
        await store.registry.unpin()
        observe(range(60, 70))
        released = await trainer.cycle()
        current = await store.registry.current()
        await redis.aclose()
        return first, pinned, released, current

    first, pinned, released, current = asyncio.run(go())
    assert pinned.decision == "skipped" and first in pinned.reason
    assert released.decision == "promoted" and current == released.version != first
