"""The micro-batch computation and its Redis commit against a real Redis: waves, redelivery, dead letters, counters, model swaps."""

import asyncio
import json
import time
import uuid

import numpy as np
import torch
from redis.asyncio import Redis

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS
from sessionrec.model.network import GRU4Rec
from sessionrec.model.vocab import Vocabulary
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.latency import Latency
from sessionrec.stream.redis.metrics import Counts
from sessionrec.stream.redis.sessions import SessionState
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.worker.batch import Applier
from sessionrec.stream.worker.inference import Engine
from sessionrec.stream.worker.processor import Record

N_ITEMS = 30


def tiny_engine(seed: int = 0, history_weight: float = 0.3) -> Engine:
    torch.manual_seed(seed)
    config = PRESETS["official"].updated(layers=[8], history_weight=history_weight)
    net = GRU4Rec(config.network, N_ITEMS)
    blob, meta = checkpoint.to_bytes(checkpoint.Checkpoint(net=net, config=config, vocab=Vocabulary(f"i{i}" for i in range(N_ITEMS))))
    return Engine(blob, meta, torch.device("cpu"), top_k=5)


def click(session, item, ts, offset, partition=0, raw=None, key=None):
    value = raw if raw is not None else json.dumps({"session_id": session, "item_id": item, "ts": ts}).encode()
    return Record(partition=partition, offset=offset, timestamp_ms=1000 * offset, key=session.encode() if key is None else key, value=value)


class Harness:
    def __init__(self, redis_url: str, **overrides):
        self.redis = Redis.from_url(redis_url)
        self.keys = Keys(f"test-{uuid.uuid4().hex[:8]}")
        self.settings = Settings(redis_prefix=self.keys.prefix, top_k=5, history_len=4, metrics_bucket_s=10, **overrides)
        store = RedisStore.over(self.redis, self.settings)
        self.vocab, self.metrics = store.vocab, store.metrics
        self.applier = Applier(self.settings, store)

    async def start(self):
        await self.vocab.seed([f"i{i}" for i in range(N_ITEMS)])
        return self

    async def run(self, records, engine, batch_size):
        out, dead, counts = [], [], Counts()
        for start in range(0, len(records), batch_size):
            outcome = await self.applier.compute(records[start : start + batch_size], engine)
            out += [json.loads(v) for _, v in outcome.recommendations]
            dead += [json.loads(v) for v in outcome.dead_letters]
            counts.add(outcome.counts)
            await self.applier.commit(outcome, outcome.latency(time.time()))
        return out, dead, counts


def session_clicks():
    # Three interleaved sessions with repeats and one item the model has never seen.
    events = [("a", "i1"), ("b", "i2"), ("a", "i3"), ("a", "i1"), ("c", "i4"), ("b", "new-1"), ("a", "i5"), ("b", "i2"), ("c", "i4"), ("a", "i1")]
    return [click(s, i, 100.0 + n, offset=n) for n, (s, i) in enumerate(events)]


def run(coro):
    return asyncio.run(coro)


def test_one_batch_equals_one_click_per_batch(redis_url):
    async def go(batch_size):
        h = await Harness(redis_url).start()
        out, _, counts = await h.run(session_clicks(), tiny_engine(), batch_size)
        await h.redis.aclose()
        return out, counts

    together, counts_together = run(go(10))
    apart, counts_apart = run(go(1))
    assert [r["item_ids"] for r in together] == [r["item_ids"] for r in apart]
    assert counts_together == counts_apart and counts_together.clicks == 10 and counts_together.scored == 7
    assert [r["offset"] for r in together] == list(range(10))
    assert all(len(set(r["item_ids"])) == 5 for r in together)


def test_redelivered_clicks_change_nothing(redis_url):
    async def go():
        h = await Harness(redis_url).start()
        engine = tiny_engine()
        records = session_clicks()
        await h.run(records, engine, 4)
        before = {k: await h.redis.get(k) for k in await h.redis.keys(f"{{{h.keys.prefix}:p*}}:s:*")}
        total_before = await h.metrics.total()
        out, _, counts = await h.run(records[3:8], engine, 3)  # redelivered after a crash
        after = {k: await h.redis.get(k) for k in before}
        total_after = await h.metrics.total()
        await h.redis.aclose()
        return before, after, out, counts, total_before, total_after

    before, after, out, counts, total_before, total_after = run(go())
    assert before == after and out == [] and counts.duplicates == 5
    assert total_after.clicks == total_before.clicks and total_after.duplicates == 5


def test_malformed_clicks_go_to_the_dead_letters_and_the_rest_is_processed(redis_url):
    bad = [
        click("x", 0, 0, offset=50, raw=b"not json"),
        click("x", 0, 0, offset=51, raw=b'{"session_id": "x", "ts": 1}'),
        click("x", 0, 0, offset=52, raw=b'{"session_id": 5, "item_id": 1, "ts": 1}'),
        click("x", 0, 0, offset=53, raw=b'{"session_id": "x", "item_id": 1, "ts": "noon"}'),
        click("x", 0, 0, offset=54, raw=b"[1, 2]"),
        click("x", 0, 0, offset=55, raw=b'{"session_id": "x", "item_id": "' + b"9" * 70000 + b'", "ts": 1}'),
    ]

    async def go():
        h = await Harness(redis_url).start()
        records = session_clicks()
        mixed = records[:3] + bad + records[3:]
        out, dead, counts = await h.run(mixed, tiny_engine(), 7)
        await h.redis.aclose()
        return out, dead, counts

    out, dead, counts = run(go())
    assert len(out) == 10 and counts.dead_letters == 6
    assert [d["offset"] for d in dead] == list(range(50, 56))
    reasons = " | ".join(d["reason"] for d in dead)
    for expected in ("not JSON", "item_id", "session_id", "ts must", "not a JSON object", "exceeds the limit"):
        assert expected in reasons
    assert [d["code"] for d in dead] == ["not_json", "bad_item_id", "bad_session_id", "bad_ts", "not_object", "too_large"]
    assert dead[-1]["truncated"] and len(dead[-1]["payload"]) == Settings().dlq_max_bytes


def test_online_counters_equal_a_recount_from_the_output(redis_url):
    async def go():
        h = await Harness(redis_url).start()
        records = session_clicks()
        out, _, _ = await h.run(records, tiny_engine(), 3)
        total = await h.metrics.total()
        latency = Latency.from_redis(await h.metrics.total_fields())
        await h.redis.aclose()
        return records, out, total, latency

    records, out, total, latency = run(go())
    assert latency.count == len(out) == len(records)  # one latency per recommendation, committed with the counters
    previous, expected = {}, Counts()
    for rec in records:
        c = json.loads(rec.value)
        prior = previous.get(c["session_id"])
        expected.score([str(i) for i in prior] if prior else None, str(c["item_id"]))
        previous[c["session_id"]] = next(r["item_ids"] for r in out if r["offset"] == rec.offset)
    assert (total.scored, total.hit1, total.hit5, total.hit20, total.rr20) == (expected.scored, expected.hit1, expected.hit5, expected.hit20, expected.rr20)


def test_a_new_model_rebuilds_state_from_recent_items(redis_url):
    async def go():
        h = await Harness(redis_url).start()
        records = session_clicks()
        await h.run(records[:6], tiny_engine(seed=0), 6)
        new = tiny_engine(seed=1)
        swapped, _, counts = await h.run(records[6:], new, 4)
        # the same clicks under the new model from the start, for reference
        h2 = await Harness(redis_url).start()
        reference, _, _ = await h2.run(records, new, 4)
        await h.redis.aclose()
        await h2.redis.aclose()
        return swapped, counts, reference[6:]

    swapped, counts, reference = run(go())
    assert counts.recomputed == 3  # a, b and c each rebuilt once, at their first click after the swap
    assert all(r["model_version"] == swapped[0]["model_version"] for r in swapped)
    # history_len is 4: sessions with at most 4 earlier clicks rebuild exactly
    assert [r["item_ids"] for r in swapped] == [r["item_ids"] for r in reference]


def test_a_score_counts_for_the_version_that_made_the_list(redis_url):
    """Across a swap, a session's first click is scored against the old model's list, its next against the new one's."""

    async def go():
        h = await Harness(redis_url).start()
        records, old, new = session_clicks(), tiny_engine(seed=0), tiny_engine(seed=1)
        await h.run(records[:6], old, 6)
        swapped = await h.applier.compute(records[6:], new)  # a, b, c once each, then a again
        await h.redis.aclose()
        return swapped.outcome, old.version, new.version

    outcome, old, new = run(go())
    assert set(outcome.scored) == {old, new}
    assert outcome.scored[old].scored == 3 and outcome.scored[new].scored == 1
    assert outcome.counts.scored == 4 and outcome.counts.hit20 == outcome.scored[old].hit20 + outcome.scored[new].hit20


def test_a_long_pause_starts_a_fresh_state_but_still_scores(redis_url):
    """After the pause the network starts over, as a new session would; the session keeps its items."""

    async def go():
        h = await Harness(redis_url, session_timeout_s=60).start()
        records = [click("s", "i1", 0, 0), click("s", "i2", 10, 1), click("s", "i3", 1000, 2)]
        out, _, counts = await h.run(records, tiny_engine(), 1)
        h2 = await Harness(redis_url).start()
        alone, _, _ = await h2.run([click("t", "i3", 0, 0)], tiny_engine(), 1)
        paused, fresh = SessionState.decode(await h.redis.get(h.keys.session("s", 0))), SessionState.decode(await h2.redis.get(h2.keys.session("t", 0)))
        await h.redis.aclose()
        await h2.redis.aclose()
        return out, counts, alone, paused, fresh

    out, counts, alone, paused, fresh = run(go())
    assert counts.fresh == 2 and counts.scored == 2
    assert np.array_equal(paused.hidden, fresh.hidden) and paused.segment == 1 and paused.history.tolist() == [1, 2, 3]
    assert {"i1", "i2", "i3"} <= set(out[2]["item_ids"]) and out[2]["item_ids"] != alone[0]["item_ids"]


def test_unknown_items_get_an_index_and_never_break_inference(redis_url):
    async def go():
        h = await Harness(redis_url).start()
        out, _, _ = await h.run([click("u", "brand-new", 0, 0), click("u", "brand-new", 1, 1)], tiny_engine(), 2)
        size = await h.vocab.size()
        await h.redis.aclose()
        return out, size

    out, size = run(go())
    assert size == N_ITEMS + 1
    assert "brand-new" in out[0]["item_ids"]  # the session's own unseen item can be repeated


def test_item_ids_go_out_as_text_whatever_type_the_click_used(redis_url):
    async def go():
        h = await Harness(redis_url).start()
        out, _, _ = await h.run([click("n", 523117, 0, 0), click("n", "523117", 1, 1), click("n", "sku-42", 2, 2)], tiny_engine(), 3)
        await h.redis.aclose()
        return out

    out = run(go())
    assert [r["item_id"] for r in out] == ["523117", "523117", "sku-42"]  # the int and its text name one item
    assert all(isinstance(item, str) for r in out for item in r["item_ids"])
    assert {"523117", "sku-42"} <= set(out[-1]["item_ids"])


def test_a_batch_processed_before_the_previous_commit_sees_its_states(redis_url):
    """Pipelined: batch 2 is processed while batch 1 is still uncommitted, then both commit in order."""

    async def go(pipelined: bool):
        h = await Harness(redis_url).start()
        engine, records = tiny_engine(), session_clicks()
        first = await h.applier.compute(records[:5], engine)
        if not pipelined:
            await h.applier.commit(first, {})
        second = await h.applier.compute(records[5:], engine)
        if pipelined:
            await h.applier.commit(first, {})
        await h.applier.commit(second, {})
        recs = [json.loads(v)["item_ids"] for _, v in first.recommendations + second.recommendations]
        states = {k: await h.redis.get(k) for k in sorted(await h.redis.keys(f"{{{h.keys.prefix}:p*}}:s:*"))}
        leftover = dict(h.applier.unwritten)
        await h.redis.aclose()
        return recs, list(states.values()), leftover

    pipelined, pipelined_states, leftover = run(go(True))
    sequential, sequential_states, _ = run(go(False))
    assert pipelined == sequential and pipelined_states == sequential_states
    assert leftover == {}  # every state made it to Redis and left memory


def test_a_click_keyed_by_anything_but_its_session_is_a_dead_letter(redis_url):
    async def go():
        h = await Harness(redis_url).start()
        records = [click("a", "i1", 1, 0), click("a", "i2", 2, 1, key=b"b"), click("c", "i3", 3, 2, key=b""), click("a", "i4", 4, 3)]
        out, dead, counts = await h.run(records, tiny_engine(), 4)
        await h.redis.aclose()
        return out, dead, counts

    out, dead, counts = run(go())
    assert [r["offset"] for r in out] == [0, 3] and counts.dead_letters == 2
    assert [d["offset"] for d in dead] == [1, 2] and all("keyed by session" in d["reason"] for d in dead)
