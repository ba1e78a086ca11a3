"""The worker's Prometheus metrics, and its /metrics and /status views served by a real Faust web server on a free port."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import aiohttp
import faust
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from sessionrec.stream.local.servers import free_port
from sessionrec.stream.redis.latency import Latency
from sessionrec.stream.redis.metrics import RR_SCALE, Counts
from sessionrec.stream.watch.prometheus import KEPT_VERSIONS, TrainerMetrics, WorkerMetrics
from sessionrec.stream.watch.web import register_web


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _batch(metrics: WorkerMetrics, clicks: int, scored: dict[str, Counts], dead: dict[str, int] | None = None, duplicates: int = 0,
           latencies: tuple[float, ...] = ()) -> None:
    counts = Counts(clicks=clicks, duplicates=duplicates)
    for c in scored.values():
        counts.add(c)
    metrics.record_batch(clicks=clicks, recommendations=clicks - duplicates - sum((dead or {}).values()), counts=counts, scored=scored,
                         dead_letters=dead or {}, latency=Latency.of(np.array(latencies)), seconds=0.02)


def test_render_counts_batches_accuracy_by_version_and_model() -> None:
    metrics = WorkerMetrics()
    _batch(metrics, 100, {"v1": Counts(scored=80, hit1=10, hit5=20, hit20=40, rr20=15 * RR_SCALE)}, {"not_json": 2, "bad_ts": 1}, duplicates=2,
           latencies=(0.004, 0.04, 0.04, 3.0))
    _batch(metrics, 28, {"v1": Counts(scored=5, hit1=1, hit5=1, hit20=2, rr20=RR_SCALE), "v2": Counts(scored=20, hit1=5, hit5=9, hit20=11,
                                                                                                          rr20=7 * RR_SCALE // 2)},
           latencies=(120.0,))
    metrics.set_model("v7", "cpu")
    samples = _samples(metrics.render().decode())
    assert samples[("sessionrec_clicks_total", ())] == 128
    assert samples[("sessionrec_recommendations_total", ())] == 123
    assert samples[("sessionrec_dead_letters_total", (("reason", "not_json"),))] == 2
    assert samples[("sessionrec_dead_letters_total", (("reason", "bad_ts"),))] == 1
    assert samples[("sessionrec_dead_letters_total", (("reason", "too_large"),))] == 0  # every reason is there before it happens
    assert samples[("sessionrec_duplicate_clicks_total", ())] == 2
    assert samples[("sessionrec_scored_clicks_total", (("model_version", "v1"),))] == 85
    assert samples[("sessionrec_scored_clicks_total", (("model_version", "v2"),))] == 20
    assert samples[("sessionrec_hits_total", (("k", "20"), ("model_version", "v1")))] == 42
    assert samples[("sessionrec_hits_total", (("k", "1"), ("model_version", "v2")))] == 5
    assert samples[("sessionrec_reciprocal_rank_total", (("model_version", "v2"),))] == 3.5
    assert samples[("sessionrec_click_to_recommendation_seconds_bucket", (("le", "0.005"),))] == 1
    assert samples[("sessionrec_click_to_recommendation_seconds_bucket", (("le", "0.05"),))] == 3
    assert samples[("sessionrec_click_to_recommendation_seconds_bucket", (("le", "60.0"),))] == 4
    assert samples[("sessionrec_click_to_recommendation_seconds_bucket", (("le", "+Inf"),))] == 5
    assert samples[("sessionrec_click_to_recommendation_seconds_count", ())] == 5
    assert abs(samples[("sessionrec_click_to_recommendation_seconds_sum", ())] - 123.084) < 1e-6
    assert samples[("sessionrec_batch_clicks_count", ())] == 2
    assert samples[("sessionrec_batch_clicks_sum", ())] == 128
    assert samples[("sessionrec_batch_clicks_bucket", (("le", "32.0"),))] == 1
    assert samples[("sessionrec_batch_seconds_count", ())] == 2
    assert samples[("sessionrec_model_info", (("device", "cpu"), ("version", "v7")))] == 1
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info", "python_gc_collections_total"} <= {k[0] for k in samples}
    assert metrics.status()["clicks_processed"] == 128 and metrics.status()["dead_letters"] == 3


def test_lag_follows_the_partitions_held() -> None:
    metrics = WorkerMetrics()
    metrics.set_lag("clicks", {0: 12, 3: 0})
    metrics.set_lag("clicks", {0: 5, 1: 7})  # partition 3 moved to another worker
    lags = {k[1]: v for k, v in _samples(metrics.render().decode()).items() if k[0] == "sessionrec_consumer_lag_records"}
    assert lags == {(("partition", "0"), ("topic", "clicks")): 5, (("partition", "1"), ("topic", "clicks")): 7}


def test_version_series_stay_bounded() -> None:
    metrics = WorkerMetrics()
    for n in range(KEPT_VERSIONS + 3):
        _batch(metrics, 1, {f"v{n}": Counts(scored=1, hit1=1, hit5=1, hit20=1, rr20=RR_SCALE)})
    versions = {dict(k[1])["model_version"] for k in _samples(metrics.render().decode()) if k[0] == "sessionrec_scored_clicks_total"}
    assert versions == {f"v{n}" for n in range(3, KEPT_VERSIONS + 3)}


def test_views_on_a_running_faust_web_server() -> None:
    port = free_port()
    app = faust.App("sessionrec-web-test", broker="kafka://127.0.0.1:1", web_port=port, web_bind="127.0.0.1",
                    web_enabled=True, store="memory://")
    metrics = WorkerMetrics()
    serving = SimpleNamespace(engine=SimpleNamespace(version="v3"), device="cpu")
    register_web(app, serving, metrics)
    _batch(metrics, 5, {})

    async def scrape() -> tuple[str, str, dict]:
        await app.web.start()  # only the web server: no broker is needed for these views
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    kind, text = response.headers["Content-Type"], await response.text()
                serving.engine.version = "v4"  # a hot swap shows up at the next request
                async with http.get(f"http://127.0.0.1:{port}/status") as response:
                    assert response.status == 200
                    status = json.loads(await response.text())
                async with http.get(f"http://127.0.0.1:{port}/ready") as response:
                    assert response.status == 503 and (await response.json())["problems"][0].startswith("starting")
                metrics.readiness.serving()
                async with http.get(f"http://127.0.0.1:{port}/ready") as response:
                    assert response.status == 200 and await response.json() == {"ready": True, "problems": [], "waiting": 0}
        finally:
            await app.web.stop()
        return kind, text, status

    kind, text, status = asyncio.run(scrape())
    assert kind.startswith("text/plain")
    samples = _samples(text)
    assert samples[("sessionrec_clicks_total", ())] == 5
    assert samples[("sessionrec_model_info", (("device", "cpu"), ("version", "v3")))] == 1
    assert status["model_version"] == "v4" and status["device"] == "cpu" and status["clicks_processed"] == 5


def test_the_trainer_serves_its_cycles_on_its_own_port() -> None:
    import urllib.request

    metrics, port = TrainerMetrics(), free_port()
    metrics.serve(port, "127.0.0.1")
    metrics.record_cycle("promoted", 12.0, 0.30, 0.32)
    metrics.record_cycle("skipped", 0.0, None, None)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        samples = _samples(response.read().decode())
    assert samples[("sessionrec_trainer_cycles_total", (("decision", "promoted"),))] == 1
    assert samples[("sessionrec_trainer_cycles_total", (("decision", "skipped"),))] == 1
    assert samples[("sessionrec_trainer_cycles_total", (("decision", "kept"),))] == 0
    assert samples[("sessionrec_trainer_cycle_seconds_count", ())] == 1  # a skipped cycle trained nothing
    assert samples[("sessionrec_trainer_held_out_mrr20", (("model", "candidate"),))] == 0.32
    try:
        metrics.serve(port, "127.0.0.1")
    except ConnectionError as exc:
        assert str(exc).startswith(f"cannot serve the trainer's metrics on 127.0.0.1:{port}")
    else:
        raise AssertionError("a port in use must be a ConnectionError")
