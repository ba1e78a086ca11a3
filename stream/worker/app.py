"""The Faust app of a worker: `sessionrec worker`, or `faust -A sessionrec.stream.worker.app worker`.

Three parts: the serving service (connections, the model and its hot swap),
the ingress (micro-batches from Kafka, offsets back to Kafka) and the agent,
which takes each micro-batch through the batch line (stream.worker.batch:
process, send, then finish in the background). Nothing is built at import:
``create_app`` makes one app from the settings; ``app`` exists only for
Faust's ``-A`` option, and only when asked for.
"""

from __future__ import annotations

from pathlib import Path

import faust

from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.prometheus import WorkerMetrics
from sessionrec.stream.watch.readiness import Readiness
from sessionrec.stream.watch.web import register_web
from sessionrec.stream.worker.batch import MicroBatch
from sessionrec.stream.worker.ingress import ClickIngress
from sessionrec.stream.worker.serving import Serving


def faust_app(settings: Settings, app_id: str) -> faust.App:
    """A Faust app on the settings' broker, configured for its quirks (DESIGN: Tansu), with the worker's web server."""
    Path(settings.faust_dir).mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=settings.broker_url,
        broker_credentials=settings.faust_credentials(),
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_bind,
        store="memory://",
        datadir=f"{settings.faust_dir}/{app_id}",
    )


def create_app(settings: Settings) -> faust.App:
    app = faust_app(settings, settings.app_id)
    batches = app.channel(maxsize=1)
    metrics = WorkerMetrics(Readiness(settings.ready_stall_s, settings.ready_max_duplicate_share))
    serving = app.service(Serving(settings, metrics))
    if settings.web_port > 0:
        register_web(app, serving, metrics)
    app.service(ClickIngress(settings, serving, batches))

    @app.agent(batches, name="recommend")
    async def recommend(stream: faust.StreamT[MicroBatch]) -> None:
        line = await serving.ready()
        async for batch in stream:
            await line.process(batch, serving.engine)  # a failure fails the batch (and the worker): it is redelivered

    return app


def __getattr__(name: str) -> faust.App:
    """``app``, built from the environment on first access: for `faust -A sessionrec.stream.worker.app`."""
    if name == "app":
        app = create_app(Settings.from_env())
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
