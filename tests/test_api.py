"""The request/response API as a process over a real worker's Redis: the same lists as the topic, stateless POSTs, one-line errors."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from urllib.parse import quote

import numpy as np
import pytest
from redis.asyncio import Redis

from sessionrec.model.data import data_dir
from sessionrec.model.neighbours import Increments
from sessionrec.replay.replayer import replay
from sessionrec.replay.source import load_stream
from sessionrec.stream.api.app import create_app
from sessionrec.stream.api.client import ApiError, RecommenderClient
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess, wait_for_api
from sessionrec.stream.local.servers import free_port
from sessionrec.stream.redis.commit import Share
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings

CLICKS = 300
ODD = 'we"ird é/1 ?#%'  # a session id that needs escaping in a URL path
EXTRA = [{"session_id": ODD, "item_id": "sku-42", "ts": 1700000000.0}, {"session_id": ODD, "item_id": 523117, "ts": 1700000001.0}]


@pytest.fixture(scope="module")
def served(kafka_bootstrap, redis_url, small_model):
    """CLICKS real clicks and a session with an odd id through a worker, then the API over its Redis; the topic's recommendations."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, namespace=f"api-{tag}", model_dir=str(small_model), web_port=0,
                        learn_online=False)  # the worker keeps the model's own neighbours: the lists a POST repeats are fixed
    clicks = load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=CLICKS)

    async def stream() -> dict:
        await replay(clicks, topic=settings.clicks_topic, kafka=settings, progress=False)
        await replay(EXTRA, topic=settings.clicks_topic, kafka=settings, progress=False)
        worker = WorkerProcess(settings)
        try:
            async with RecommendationReader(settings) as reader:
                await reader.wait_for(CLICKS + len(EXTRA), timeout_s=90, check=worker.check)
        finally:
            worker.stop()
        return {key: got.rec for key, got in reader.received.items()}

    recs = asyncio.run(stream())
    api_settings = Settings(redis_url=redis_url, redis_prefix=settings.redis_prefix, model_dir=str(small_model), api_port=free_port(),
                            log_format="json", log_level="info", api_workers=2)  # two processes; learning on: they follow the (empty) feed
    api = WorkerProcess(api_settings, name="api", command="api")
    client = RecommenderClient(f"http://127.0.0.1:{api_settings.api_port}")
    try:
        wait_for_api(api, f"http://127.0.0.1:{api_settings.api_port}")
        yield api_settings, clicks, recs, client, api
    finally:
        client.close()
        api.stop()


def latest_per_session(recs: dict) -> dict:
    latest = {}
    for (partition, offset), rec in sorted(recs.items()):  # a session lives in one partition: offset order is its click order
        latest[rec["session_id"]] = rec
    return latest


def test_a_sessions_list_equals_its_latest_message_on_the_topic(served) -> None:
    settings, clicks, recs, client, api = served
    latest = latest_per_session(recs)
    assert len(latest) == clicks["session_id"].nunique() + 1
    for session, rec in latest.items():
        got = client.session(session)
        assert got is not None
        assert got.model_dump(exclude={"age_s"}) == {k: rec[k] for k in got.model_dump(exclude={"age_s"})}
        assert 0 <= got.age_s < 3600
    assert client.session(ODD).item_id == "523117"  # escaped in the path, ints named as text


def test_a_post_of_a_sessions_clicks_equals_the_topics_list_after_the_last(served) -> None:
    """For a session without a pause, the stateless list is the stream's (same model, same neighbours, same event time)."""
    settings, clicks, recs, client, api = served
    by_position = {(rec["session_id"], rec["ts"], rec["item_id"]): rec for rec in recs.values()}
    sessions = defaultdict(list)
    for session, item, ts in zip(clicks["session_id"], clicks["item_id"], clicks["ts"], strict=True):
        sessions[session].append((item, float(ts)))
    compared = 0
    for session, seen in sessions.items():
        if max(np.diff([ts for _, ts in seen]), default=0.0) > 1800.0:  # a pause starts a fresh state in the stream: not one session here
            continue
        answer = client.recommend([item for item, _ in seen], ts=seen[-1][1])
        assert answer.item_ids == by_position[(session, seen[-1][1], seen[-1][0])]["item_ids"]
        assert answer.unknown == [] and answer.model_version == by_position[(session, seen[-1][1], seen[-1][0])]["model_version"]
        compared += 1
    assert compared > 50
    short = client.recommend([523117, "523117"], k=5)
    assert len(short.item_ids) == 5 and all(isinstance(item, str) for item in short.item_ids)


def test_a_post_stores_nothing(served) -> None:
    settings, clicks, recs, client, api = served

    async def snapshot() -> dict:
        redis = Redis.from_url(settings.redis_url)
        keys = sorted(await redis.keys(f"{{{settings.redis_prefix}*"))  # the global slot and every partition's
        values = {key: await redis.dump(key) for key in keys}
        await redis.aclose()
        return values

    before = asyncio.run(snapshot())
    answer = client.recommend(["never-seen-1", 523117, "never-seen-1", "never-seen-2"])
    cold = client.recommend(["never-seen-3"])  # nothing known: the model's list for an empty session
    assert answer.unknown == ["never-seen-1", "never-seen-2"] and len(answer.item_ids) == settings.top_k
    assert cold.unknown == ["never-seen-3"] and len(cold.item_ids) == settings.top_k
    assert asyncio.run(snapshot()) == before


def test_bad_requests_answer_one_line(served) -> None:
    settings, clicks, recs, client, api = served
    http = client.http
    assert client.session("no-such-session") is None
    missing = http.get("/sessions/no-such-session/recommendations")
    assert missing.status_code == 404 and "no-such-session" in missing.json()["detail"]
    for body, words in [({"item_ids": []}, "item_ids: List should have at least 1 item"), ({"item_ids": [True]}, "item_ids.0"),
                        ({"item_ids": [1], "k": 0}, "k: Input should be greater than or equal to 1"), ({"items": [1]}, "item_ids: Field required"),
                        ({"item_ids": [1], "k": settings.top_k + 1}, f"k must be at most {settings.top_k}")]:
        answer = http.post("/recommend", json=body)
        assert answer.status_code == 422 and words in answer.json()["detail"] and "\n" not in answer.json()["detail"], (body, answer.text)
    with pytest.raises(ApiError, match="k must be at most") as info:
        client.recommend([1], k=settings.top_k + 1)
    assert info.value.status == 422


def test_the_api_follows_the_learning_feed(served) -> None:
    """A lesson a worker commits reaches the API's item neighbours, as it reaches every worker's."""
    settings, clicks, recs, client, api = served
    before = client.health().neighbour_lessons

    async def commit_a_lesson() -> None:
        redis = Redis.from_url(settings.redis_url)
        store = RedisStore.over(redis, settings)
        lesson = Increments(np.array([0]), np.array([1]), np.array([1.0], np.float32), np.array([0]), np.array([1.7e9]))
        await store.commit(store.commit.next_number(), await store.vocab.adopt(), {0: Share(lesson=lesson.to_bytes())}, {})
        await redis.aclose()

    asyncio.run(commit_a_lesson())
    deadline = time.monotonic() + 30
    while client.health().neighbour_lessons == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.health().neighbour_lessons == before + 1


def test_the_served_document_is_the_printed_one(served) -> None:
    settings, clicks, recs, client, api = served
    served_document = client.http.get("/openapi.json").json()
    printed = subprocess.run([sys.executable, "-m", "sessionrec.stream.cli", "api", "--openapi"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(printed.stdout) == served_document == create_app(Settings()).openapi()
    assert set(served_document["paths"]) == {"/sessions/{session_id}/recommendations", "/recommend", "/health"}
    item_ids = served_document["components"]["schemas"]["Recommendation"]["properties"]["item_ids"]
    assert item_ids["items"] == {"type": "string"}


def test_the_api_logs_json_lines(served) -> None:
    settings, clicks, recs, client, api = served
    lines = [json.loads(line) for line in api.log_path.read_text().splitlines() if line.strip()]
    assert any(line["message"].startswith("serving model v") for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_a_taken_port_ends_the_api_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "sessionrec.stream.cli", "api", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr


def test_without_redis_the_api_ends_in_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "sessionrec.stream.cli", "api", "--redis-url", f"redis://127.0.0.1:{free_port()}/0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Redis" in done.stderr, done.stderr



def test_the_load_generator_sends_what_it_was_asked_to(served) -> None:
    """The bench's load generator (its own process): every request answered and counted, after the warm-up only."""
    from sessionrec.stream.local.api_bench import load, summarise

    settings, clicks, recs, client, api = served
    requests = [["GET", f"/sessions/{quote(ODD, safe='')}/recommendations", None], ["POST", "/recommend", {"item_ids": [523117]}],
                ["GET", "/sessions/no-such-session/recommendations", None]]
    raw = load(settings.api_port, requests, rate=60, seconds=1, warmup_s=0.5, connections=2)
    assert raw["sent"] == 60 and raw["errors"] == [] and len(raw["latency_s"]) == 60
    assert sorted(set(raw["status"])) == [200, 404] and raw["status"].count(404) == 20  # round-robin from request 30 on
    summary = summarise("mixed", 60, raw)
    assert summary.requests == 60 and summary.errors == 20 and summary.p50_ms <= summary.p90_ms <= summary.p99_ms <= summary.max_ms
