"""The timeline the dashboard and the run report draw, read from a real Redis, and the report's two files."""

from __future__ import annotations

import asyncio
import json
import re
import struct
import uuid

import numpy as np
import pytest
import redis
from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.latency import Latency
from sessionrec.stream.redis.metrics import RR_SCALE, Counts
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.report import write_report
from sessionrec.stream.watch.timeline import read_timeline
from tests import browser

NOW = 1_800_000_005.0  # 5 s into a 10-second bucket


def _write(url: str, prefix: str) -> None:
    """Three buckets as workers leave them (a quiet one between), lag reports and a promotion."""
    keys, client = Keys(prefix), redis.Redis.from_url(url)
    try:
        buckets = {1_799_999_960: (Counts(clicks=100, scored=80, hit1=20, hit20=40, rr20=30 * RR_SCALE), [0.01] * 60 + [0.4] * 40),
                   1_799_999_990: (Counts(clicks=50, scored=40, hit1=20, hit20=30, rr20=25 * RR_SCALE), [0.02] * 50),
                   1_800_000_000: (Counts(clicks=5, scored=4, hit1=4, hit20=4, rr20=4 * RR_SCALE), [0.02] * 5)}  # still filling at NOW
        for partition, (start, (counts, latencies)) in enumerate(buckets.items()):  # each in another partition's slot: readers add them up
            client.hset(keys.metrics_bucket(start, partition), mapping={**vars(counts), **Latency.of(np.array(latencies)).fields()})
        client.hset(keys.lag_bucket(1_799_999_950), mapping={"w1": 7})  # lag reported before any click was counted
        client.hset(keys.lag_bucket(1_799_999_960), mapping={"w1": 30, "w2": 12})
        client.lpush(keys.model_events, json.dumps({"at": 1_799_999_975.0, "event": "promoted", "version": "v2", "previous": "v1"}))
        client.lpush(keys.model_events, json.dumps({"at": 1_700_000_000.0, "event": "seeded", "version": "v1", "previous": None}))
        client.set(keys.model_current, "v2")
    finally:
        client.close()


def _timeline(url: str, prefix: str, **options: object) -> dict:
    async def go() -> dict:
        client = Redis.from_url(url)
        try:
            return await read_timeline(RedisStore.over(client, Settings(redis_prefix=prefix, metrics_bucket_s=10)), 600, NOW, **options)
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.fixture
def prefix(redis_url: str) -> str:
    prefix = f"t-timeline-{uuid.uuid4().hex[:8]}"
    _write(redis_url, prefix)
    return prefix


def test_the_timeline_starts_at_the_first_data_and_leaves_out_the_filling_bucket(redis_url, prefix):
    live = _timeline(redis_url, prefix)
    b = live["buckets"]
    assert b["t"] == [1_799_999_950, 1_799_999_960, 1_799_999_970, 1_799_999_980, 1_799_999_990]
    assert b["clicks"] == [0, 100, 0, 0, 50] and b["clicks_per_s"] == [0.0, 10.0, 0.0, 0.0, 5.0]
    assert b["lag"] == [7, 42, None, None, None]
    assert b["hr@20"] == [None, 0.5, None, None, 0.75] and b["mrr@20"][1] == 30 / 80
    assert b["hr@20 running"] == [None, 0.5, 0.5, 0.5, 70 / 120]
    assert 0.005 < b["latency_p50_s"][1] <= 0.01 and 0.3 < b["latency_p99_s"][1] <= 0.5 and b["latency_p50_s"][2] is None
    assert [e["version"] for e in live["events"]] == ["v2"]  # only moves within the window
    assert live["model_version"] == "v2" and live["bucket_s"] == 10

    report = _timeline(redis_url, prefix, filling=True)["buckets"]
    assert report["t"][-1] == 1_800_000_000 and report["clicks_per_s"][-1] == 1.0  # 5 clicks in the 5 s it has run


def test_the_run_report_is_one_self_contained_page_and_a_png(redis_url, prefix, tmp_path):
    page, png = write_report(_timeline(redis_url, prefix, filling=True), tmp_path / "report", "a test run")
    html = page.read_text()
    assert "<title>a test run</title>" in html and "window.SESSIONREC_DATA" in html
    assert "plotly.js v" in html  # plotly.js inline, from the installed wheel
    assert not re.search(r"<script[^>]+src=", html), "a script the page would have to fetch"
    head = png.read_bytes()[:24]
    width, height = struct.unpack(">II", head[16:24])  # the PNG's header chunk
    assert head.startswith(b"\x89PNG\r\n\x1a\n") and width >= 800 and height >= 600
    if browser.chromium() is None:
        pytest.skip("no chromium on PATH: .ci/run installs Debian's chromium (apt-get install chromium)")
    dom = browser.dump_dom(page.as_uri(), budget_ms=3000)
    for chart in ("accuracy", "throughput", "latency", "lag"):
        points = re.search(rf'<div id="{chart}"[^>]*data-points="(\d+)"', dom)
        assert points and int(points.group(1)) > 0, f"chart {chart} holds no data points"
