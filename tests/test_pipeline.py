"""End to end against real Tansu and Redis: replay -> worker process -> recommendations."""

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis.asyncio import Redis

from sessionrec.model.data import data_dir
from sessionrec.replay.replayer import replay
from sessionrec.replay.source import load_stream
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.settings import Settings
from tests.contracts import assert_valid

CLICKS = 400
BAD = [b"not json", b'{"session_id": "x", "ts": 1}', b'{"session_id": "x", "item_id": [1], "ts": 1}']


@pytest.fixture(scope="module")
def run(kafka_bootstrap, redis_url, small_model):
    """One worker over CLICKS real clicks plus a few malformed ones; everything it produced."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, namespace=f"e2e-{tag}", model_dir=str(small_model),
        web_port=0, batch_size=64, top_k=20, log_format="json", log_level="info",
    )
    clicks = load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=CLICKS)

    async def go():
        summary = await replay(clicks, topic=settings.clicks_topic, kafka=settings, progress=False)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        for value in BAD:
            await producer.send_and_wait(settings.clicks_topic, value, key=b"x")
        await producer.stop()
        worker = WorkerProcess(settings)
        try:
            async with RecommendationReader(settings) as reader:
                await reader.wait_for(CLICKS, timeout_s=90, check=worker.check)
                await asyncio.sleep(1.0)
                await reader.poll()
        finally:
            worker.stop()
        redis = Redis.from_url(redis_url)
        total = await OnlineMetrics(redis, Keys(settings.redis_prefix), 10).total()
        await redis.aclose()
        dead, click_records = await read_topic(settings, settings.dlq_topic), await read_topic(settings, settings.clicks_topic)
        return summary, reader, total, dead, click_records, worker.log_path.read_text()

    return settings, clicks, *asyncio.run(go())


async def read_topic(settings, topic):
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    await consumer.topics()
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    records = []
    while batch := await consumer.getmany(timeout_ms=1000):
        records += [m for messages in batch.values() for m in messages]
    await consumer.stop()
    return records


def test_exactly_one_recommendation_per_click(run):
    settings, clicks, summary, reader, total, dead, click_records, worker_log = run
    good = {(m.partition, m.offset) for m in click_records if m.key != b"x"}
    assert summary.clicks == CLICKS and len(good) == CLICKS
    assert set(reader.received) == good
    for got in reader.received.values():
        rec = got.rec
        assert len(rec["item_ids"]) == 20 and len(set(rec["item_ids"])) == 20
        assert all(isinstance(item, str) for item in rec["item_ids"])  # one type, though every id of this shop is a number
        assert rec["model_version"].startswith("v")


def test_recommendations_answer_their_click(run):
    settings, clicks, summary, reader, total, dead, click_records, worker_log = run
    by_position = {(m.partition, m.offset): json.loads(m.value) for m in click_records if m.key != b"x"}
    for key, got in reader.received.items():
        click = by_position[key]
        assert (got.rec["session_id"], got.rec["ts"], got.rec["item_id"]) == (click["session_id"], click["ts"], str(click["item_id"]))


def test_online_counters_equal_a_recount_from_the_topics(run):
    settings, clicks, summary, reader, total, dead, click_records, worker_log = run
    recs = sorted((r.rec for r in reader.received.values()), key=lambda r: (r["partition"], r["offset"]))
    previous, expected = {}, Counts()
    for rec in recs:  # a session lives in one partition, so offset order is its click order
        expected.score(previous.get(rec["session_id"]), rec["item_id"])
        previous[rec["session_id"]] = rec["item_ids"]
    assert total.clicks == CLICKS
    assert (total.scored, total.hit1, total.hit5, total.hit20, total.rr20) == (expected.scored, expected.hit1, expected.hit5, expected.hit20, expected.rr20)
    assert expected.scored > 0


def test_malformed_clicks_land_in_the_dead_letter_topic(run):
    settings, clicks, summary, reader, total, dead, click_records, worker_log = run
    letters = [json.loads(m.value) for m in dead]
    assert len(letters) == len(BAD) and total.dead_letters == len(BAD)
    assert {letter["payload"] for letter in letters} == {b.decode() for b in BAD}
    assert all(letter["reason"] for letter in letters)


def test_every_message_of_the_run_follows_its_schema(run):
    settings, clicks, summary, reader, total, dead, click_records, worker_log = run
    assert assert_valid("click", (json.loads(m.value) for m in click_records if m.key != b"x")) == CLICKS  # the replay's
    assert assert_valid("recommendation", (r.rec for r in reader.received.values())) == CLICKS
    assert assert_valid("dead_letter", (json.loads(m.value) for m in dead)) == len(BAD)


def test_the_worker_logs_json_lines(run):
    settings, clicks, summary, reader, total, dead, click_records, worker_log = run
    lines = [json.loads(line) for line in worker_log.splitlines() if line.strip()]
    assert any(line["message"].startswith("serving model v") and line["logger"] == "sessionrec.stream.worker.serving" for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
