"""The worker's own HTTP views on Faust's web server: `/metrics` (Prometheus), `/status` and `/ready` (JSON).

These are worker-local numbers (stream.watch.prometheus), for Prometheus to
scrape per worker; what all workers did together lives in Redis and is read
by `sessionrec monitor` and `sessionrec dashboard`.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from sessionrec.stream.watch.prometheus import WorkerMetrics


def serving_model(serving: Any) -> tuple[str | None, str]:
    """(model version, device) of a stream.serving.Serving, before or after it started."""
    engine = getattr(serving, "engine", None)
    return getattr(engine, "version", None), str(getattr(serving, "device", "unknown"))


def status(serving: Any, metrics: WorkerMetrics) -> dict[str, Any]:
    version, device = serving_model(serving)
    return {"model_version": version, "device": device, **metrics.status(), "host": socket.gethostname(), "pid": os.getpid()}


def register_web(app: faust.App, serving: Any, metrics: WorkerMetrics) -> None:
    """Add `/metrics`, `/status` and `/ready` to the app's web server (call before the worker starts)."""

    @app.page("/metrics", name="sessionrec-metrics")
    async def prometheus_metrics(self: View, request: Request) -> Response:
        metrics.set_model(*serving_model(serving))  # pulled at scrape time: a swap needs no hook
        return self.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/status", name="sessionrec-status")
    async def worker_status(self: View, request: Request) -> Response:
        return self.json(status(serving, metrics))

    @app.page("/ready", name="sessionrec-ready")
    async def worker_ready(self: View, request: Request) -> Response:
        """200 while the worker does its job; 503 with the reasons while it is starting, stalled or skipping most clicks."""
        problems = metrics.readiness.problems()
        return self.json({"ready": not problems, "problems": problems, "waiting": metrics.readiness.waiting}, status=503 if problems else 200)


__all__ = ["register_web", "serving_model", "status"]
