"""The worker's own HTTP views on Faust's web server: `/metrics` (Prometheus) and `/status` (JSON).

These are worker-local numbers (this process's throughput and batch
timings), for Prometheus to scrape per worker; accuracy across all workers
lives in Redis and is read by `sessionrec monitor`. The metrics sit in a
dedicated CollectorRegistry, so nothing else in the process (Faust, aiokafka,
a test) can add to or clash with them.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, Info, generate_latest

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerMetrics:
    """One worker's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.clicks = Counter("sessionrec_clicks", "Clicks taken from Kafka and processed by this worker", registry=r)
        self.recommendations = Counter("sessionrec_recommendations", "Recommendation lists sent", registry=r)
        self.dead_letters = Counter("sessionrec_dead_letters", "Clicks rejected to the dead-letter topic", registry=r)
        self.batch_clicks = Histogram("sessionrec_batch_clicks", "Clicks per micro-batch", buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.batch_seconds = Histogram("sessionrec_batch_seconds", "Seconds per micro-batch: Redis read, model, send, commit",
                                       buckets=BATCH_SECONDS_BUCKETS, registry=r)
        self.model = Info("sessionrec_model", "Model version this worker serves, and its device", registry=r)
        self.started = time.time()
        self._model: tuple[str, str] | None = None

    def record_batch(self, clicks: int, recommendations: int, dead_letters: int, seconds: float) -> None:
        """Count one finished micro-batch (call after its commit)."""
        self.clicks.inc(clicks)
        self.recommendations.inc(recommendations)
        self.dead_letters.inc(dead_letters)
        self.batch_clicks.observe(clicks)
        self.batch_seconds.observe(seconds)

    def set_model(self, version: str | None, device: str) -> None:
        if version and (version, device) != self._model:
            self.model.info({"version": version, "device": device})
            self._model = (version, device)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def status(self) -> dict[str, Any]:
        return {
            "clicks_processed": int(self.clicks._value.get()),  # noqa: SLF001 - prometheus_client has no public read
            "recommendations_sent": int(self.recommendations._value.get()),  # noqa: SLF001
            "dead_letters": int(self.dead_letters._value.get()),  # noqa: SLF001
            "uptime_s": round(time.time() - self.started, 3),
        }


METRICS = WorkerMetrics()  # this process's worker


def record_batch(clicks: int, recommendations: int, dead_letters: int, seconds: float) -> None:
    """Count one finished micro-batch in this process's metrics."""
    METRICS.record_batch(clicks, recommendations, dead_letters, seconds)


def serving_model(serving: Any) -> tuple[str | None, str]:
    """(model version, device) of a stream.serving.Serving, before or after it started."""
    engine = getattr(serving, "engine", None)
    return getattr(engine, "version", None), str(getattr(serving, "device", "unknown"))


def status(serving: Any, metrics: WorkerMetrics = METRICS) -> dict[str, Any]:
    version, device = serving_model(serving)
    return {"model_version": version, "device": device, **metrics.status(), "host": socket.gethostname(), "pid": os.getpid()}


def register_web(app: faust.App, serving: Any, metrics: WorkerMetrics = METRICS) -> None:
    """Add `/metrics` and `/status` to the app's web server (call before the worker starts)."""

    @app.page("/metrics", name="sessionrec-metrics")
    async def prometheus_metrics(self: View, request: Request) -> Response:
        metrics.set_model(*serving_model(serving))  # pulled at scrape time: a swap needs no hook
        return self.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/status", name="sessionrec-status")
    async def worker_status(self: View, request: Request) -> Response:
        return self.json(status(serving, metrics))


__all__ = ["METRICS", "WorkerMetrics", "record_batch", "register_web", "serving_model", "status"]
