"""The worker's /metrics and /status views, served by a real Faust web server on a free port."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import aiohttp
import faust
from prometheus_client.parser import text_string_to_metric_families

from sessionrec.stream.local.servers import free_port
from sessionrec.stream.watch.web import WorkerMetrics, register_web


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_render_counts_batches_and_model() -> None:
    metrics = WorkerMetrics()
    metrics.record_batch(clicks=100, recommendations=97, dead_letters=3, seconds=0.02)
    metrics.record_batch(clicks=28, recommendations=28, dead_letters=0, seconds=0.004)
    metrics.set_model("v7", "cpu")
    samples = _samples(metrics.render().decode())
    assert samples[("sessionrec_clicks_total", ())] == 128
    assert samples[("sessionrec_recommendations_total", ())] == 125
    assert samples[("sessionrec_dead_letters_total", ())] == 3
    assert samples[("sessionrec_batch_clicks_count", ())] == 2
    assert samples[("sessionrec_batch_clicks_sum", ())] == 128
    assert samples[("sessionrec_batch_clicks_bucket", (("le", "32.0"),))] == 1
    assert samples[("sessionrec_batch_seconds_count", ())] == 2
    assert samples[("sessionrec_model_info", (("device", "cpu"), ("version", "v7")))] == 1
    assert metrics.status()["clicks_processed"] == 128


def test_views_on_a_running_faust_web_server() -> None:
    port = free_port()
    app = faust.App("sessionrec-web-test", broker="kafka://127.0.0.1:1", web_port=port, web_bind="127.0.0.1",
                    web_enabled=True, store="memory://")
    metrics = WorkerMetrics()
    serving = SimpleNamespace(engine=SimpleNamespace(version="v3"), device="cpu")
    register_web(app, serving, metrics)
    metrics.record_batch(clicks=5, recommendations=5, dead_letters=0, seconds=0.01)

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
        finally:
            await app.web.stop()
        return kind, text, status

    kind, text, status = asyncio.run(scrape())
    assert kind.startswith("text/plain")
    samples = _samples(text)
    assert samples[("sessionrec_clicks_total", ())] == 5
    assert samples[("sessionrec_model_info", (("device", "cpu"), ("version", "v3")))] == 1
    assert status["model_version"] == "v4" and status["device"] == "cpu" and status["clicks_processed"] == 5
