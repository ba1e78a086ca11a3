"""Watching a running stream: one worker process on real Tansu and Redis, scraped, rolled back under load, and its dashboard in a browser."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pandas as pd
import pytest
import torch
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from sessionrec.model import checkpoint
from sessionrec.model.data import data_dir
from sessionrec.replay.pacing import Pacing
from sessionrec.replay.replayer import replay
from sessionrec.replay.source import load_stream
from sessionrec.stream.cli.main import main
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess
from sessionrec.stream.local.servers import free_port
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.latency import Latency
from sessionrec.stream.redis.metrics import RR_SCALE, Counts, OnlineMetrics
from sessionrec.stream.redis.registry import ModelRegistry
from sessionrec.stream.settings import Settings
from tests import browser

FIRST = 600  # clicks replayed before any test
UNDER_LOAD = 1500  # clicks replayed at a steady rate while the rollback happens
BAD = [b"not json", b'{"session_id": "x", "ts": 1}', b"[1]"]
CHARTS = ("accuracy", "throughput", "latency", "lag")


@dataclass
class Stream:
    settings: Settings
    worker: WorkerProcess
    frame: pd.DataFrame
    sent: int  # valid clicks replayed so far
    seeded: str  # the model version the worker started with

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"


async def until(condition: Callable[[], Awaitable[bool]], what: str, stream: Stream, timeout_s: float = 90.0) -> None:
    """Poll ``condition`` until it holds; fail (never hang) when the worker dies or ``timeout_s`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await condition():
        stream.worker.check()
        assert loop.time() < deadline, f"{what} did not happen within {timeout_s:.0f} s"
        await asyncio.sleep(0.2)


async def scrape(stream: Stream) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(f"{stream.web}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def by_name(samples: dict, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


async def redis_total(stream: Stream) -> tuple[Counts, Latency]:
    redis = Redis.from_url(stream.settings.redis_url)
    try:
        raw = await OnlineMetrics(redis, Keys(stream.settings.redis_prefix, stream.settings.partitions), stream.settings.metrics_bucket_s).total_fields()
    finally:
        await redis.aclose()
    return Counts.from_redis(raw), Latency.from_redis(raw)


@pytest.fixture(scope="module")
def stream(kafka_bootstrap, redis_url, small_model):
    tag = uuid.uuid4().hex[:8]
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, namespace=f"watch-{tag}", model_dir=str(small_model),
                        web_port=free_port(), batch_size=64, metrics_bucket_s=1)
    frame = load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=FIRST + UNDER_LOAD)

    async def first_clicks() -> None:
        await replay(frame.iloc[:FIRST], topic=settings.clicks_topic, kafka=settings, progress=False)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        for value in BAD:
            await producer.send_and_wait(settings.clicks_topic, value, key=b"x")
        await producer.stop()

    asyncio.run(first_clicks())
    worker = WorkerProcess(settings)
    try:
        live = Stream(settings, worker, frame, FIRST, checkpoint.load(small_model).version)

        async def answered() -> None:
            async def applied() -> bool:
                return (await redis_total(live))[0].clicks == FIRST

            await until(applied, f"{FIRST} clicks applied", live)

        asyncio.run(answered())
        yield live
    finally:
        worker.stop()


def test_the_exposition_sums_over_versions_to_the_redis_totals(stream):
    async def go():
        total, latency = await redis_total(stream)

        async def scraped_all() -> bool:
            samples = await scrape(stream)
            return samples.get(("sessionrec_recommendations_total", ())) == total.clicks

        await until(scraped_all, "the metrics counting every committed batch", stream)

        async def lag_settled() -> bool:
            lags = by_name(await scrape(stream), "sessionrec_consumer_lag_records")
            return len(lags) == stream.settings.partitions and sum(lags.values()) == 0

        await until(lag_settled, "a lag of 0 on every partition once all is committed", stream)
        return total, latency, await scrape(stream)

    total, latency, samples = asyncio.run(go())
    scored, rr = by_name(samples, "sessionrec_scored_clicks_total"), by_name(samples, "sessionrec_reciprocal_rank_total")
    hits = by_name(samples, "sessionrec_hits_total")
    assert sum(scored.values()) == total.scored > 0
    for k, expected in (("1", total.hit1), ("5", total.hit5), ("20", total.hit20)):
        assert sum(v for labels, v in hits.items() if dict(labels)["k"] == k) == expected
    assert abs(sum(rr.values()) - total.rr20 / RR_SCALE) < 1e-6
    assert {dict(labels)["model_version"] for labels in scored} == {stream.seeded}
    dead = by_name(samples, "sessionrec_dead_letters_total")
    assert sum(dead.values()) == total.dead_letters == len(BAD)
    assert dead[(("reason", "not_json"),)] == 1 and dead[(("reason", "bad_item_id"),)] == 1 and dead[(("reason", "not_object"),)] == 1
    assert samples[("sessionrec_click_to_recommendation_seconds_count", ())] == latency.count == total.clicks  # Redis and Prometheus agree
    assert samples[("sessionrec_model_info", (("device", "cpu"), ("version", stream.seeded)))] == 1


def test_a_rollback_under_load_changes_the_served_version_and_drops_no_click(stream, small_model):
    ckpt = checkpoint.load(small_model)
    with torch.no_grad():
        ckpt.net.item_out.weight.mul_(0.5)  # other weights: another version
    ckpt.parent = stream.seeded
    settings = stream.settings

    async def go():
        redis = Redis.from_url(settings.redis_url)
        newer = await ModelRegistry(redis, Keys(settings.redis_prefix)).promote(*checkpoint.to_bytes(ckpt))
        await redis.aclose()

        async def serving(version: str) -> bool:
            async with aiohttp.ClientSession() as http, http.get(f"{stream.web}/status") as response:
                return json.loads(await response.text())["model_version"] == version

        await until(lambda: serving(newer), f"the worker serving {newer}", stream)
        async with RecommendationReader(settings) as reader:
            before = stream.sent
            sending = asyncio.create_task(replay(stream.frame.iloc[FIRST:], topic=settings.clicks_topic, kafka=settings,
                                                 pacing=Pacing(rate=500.0), progress=False))

            async def some_answered() -> bool:
                await reader.poll(timeout_ms=100)
                return len(reader.received) >= before + UNDER_LOAD // 4

            await until(some_answered, "a quarter of the clicks under load answered", stream)
            cli = ["models", "rollback", "--redis-url", settings.redis_url, "--redis-prefix", settings.redis_prefix]
            rolled = await asyncio.to_thread(CliRunner().invoke, main, cli)
            await sending
            stream.sent += UNDER_LOAD

            async def all_answered() -> bool:
                await reader.poll(timeout_ms=100)
                return len(reader.received) >= stream.sent

            await until(all_answered, "every click answered", stream)
            await asyncio.sleep(0.5)  # anything sent twice would arrive now
            await reader.poll(timeout_ms=500)
        served_after = await serving(stream.seeded)
        return newer, rolled, reader, served_after, (await redis_total(stream))[0], await scrape(stream)

    newer, rolled, reader, served_after, total, samples = asyncio.run(go())
    assert rolled.exit_code == 0, rolled.output
    assert f"rolled back to {stream.seeded} (was {newer})" in rolled.output and f"1 worker serves {stream.seeded}" in rolled.output
    assert served_after
    assert len(reader.received) == stream.sent == total.clicks and total.duplicates == 0  # every click answered, once
    switched: dict[int, list[str]] = {}
    for rec in sorted((r.rec for r in reader.received.values()), key=lambda r: (r["partition"], r["offset"])):
        # per partition, in click order: the seeded model, the newer one once promoted, the seeded one again once rolled back
        versions = switched.setdefault(rec["partition"], [])
        if not versions or versions[-1] != rec["model_version"]:
            versions.append(rec["model_version"])
    assert any(v == [stream.seeded, newer, stream.seeded] for v in switched.values())
    assert all(v in ([stream.seeded], [stream.seeded, newer], [stream.seeded, newer, stream.seeded]) for v in switched.values())
    assert {dict(labels)["model_version"] for labels in by_name(samples, "sessionrec_scored_clicks_total")} == {stream.seeded, newer}


@pytest.mark.skipif(browser.chromium() is None, reason="no chromium on PATH: .ci/run installs Debian's chromium (apt-get install chromium)")
def test_the_dashboard_in_a_headless_browser_draws_the_running_stream(stream):
    settings = stream.settings
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "sessionrec.stream.cli", "dashboard", "--port", str(port), "--refresh", "1",
                               "--redis-url", settings.redis_url, "--redis-prefix", settings.redis_prefix],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "SESSIONREC_METRICS_BUCKET_S": str(settings.metrics_bucket_s)})  # the workers' bucket width
    try:
        line = server.stdout.readline()  # printed once it listens
        assert line.startswith(f"dashboard on http://127.0.0.1:{port}/"), line
        page = browser.dump_dom(f"http://127.0.0.1:{port}/")
    finally:
        server.terminate()
        server.wait(10)
    assert re.search(r'<body[^>]*data-drawn="[1-9]', page), "the page never drew its data"
    for chart in CHARTS:
        div = re.search(rf'<div id="{chart}"[^>]*>', page)
        assert div, f"no chart {chart}"
        points = re.search(r'data-points="(\d+)"', div.group(0))
        assert points and int(points.group(1)) > 0, f"chart {chart} holds no data points: {div.group(0)}"
    assert page.count('class="main-svg"') >= len(CHARTS)  # plotly drew them
    assert stream.seeded in page  # the model in the header and the workers' table
    assert not re.search(r'<script[^>]+src="(https?:)?//', page), "a script from another host"
