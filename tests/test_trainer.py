"""The online trainer against a real Redis: window bounds, fine-tune, guarded promotion."""

import asyncio
import json
import uuid

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


def rec(session, item, ts):
    return json.dumps({"session_id": session, "item_id": item, "ts": ts, "item_ids": [], "model_version": "v", "partition": 0, "offset": 0}).encode()


def test_a_fine_tune_that_learns_new_items_is_promoted(redis_url):
    async def go():
        redis = Redis.from_url(redis_url)
        keys = Keys(f"trainer-{uuid.uuid4().hex[:8]}")
        settings = Settings(redis_prefix=keys.prefix, trainer_min_sessions=10, trainer_epochs=4, trainer_holdout=0.25)
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
                trainer.observe(rec(f"s{s}", f"new-{step}", 100.0 * s + step))
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
        trainer.observe(rec("a", 1, 0.0))
        trainer.observe(rec("a", 2, 1.0))
        result = await trainer.cycle()
        await redis.aclose()
        return result

    assert asyncio.run(go()) is None
