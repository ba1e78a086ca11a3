"""The Faust app: `sessionrec worker`, or `faust -A stream.app worker`.

The ingress fetches clicks from Kafka in bounded micro-batches (at most
``batch_size`` clicks, waiting at most ``batch_wait_ms``) and passes each to
the agent; the agent runs it through the serving service, and the batch's
offsets are committed only after the recommendations were acknowledged by
the broker and the states committed to Redis (see stream.ingress for why the
clicks do not come through Faust's per-event stream).
"""

from __future__ import annotations

from pathlib import Path

import faust

from sessionrec.stream.worker.ingress import ClickIngress, MicroBatch
from sessionrec.stream.worker.serving import Serving
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.web import register_web


def create_app(settings: Settings) -> faust.App:
    Path(settings.faust_dir).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
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
        datadir=f"{settings.faust_dir}/{settings.app_id}",
    )
    batches = app.channel(maxsize=1)
    serving = app.service(Serving(settings))
    if settings.web_port > 0:
        register_web(app, serving)
    app.service(ClickIngress(settings, batches))

    @app.agent(batches, name="recommend")
    async def recommend(stream: faust.StreamT[MicroBatch]) -> None:
        async for batch in stream:
            try:
                finishing = await serving.handle(batch.records)
            except Exception as exc:  # the ingress re-raises it: the batch is not committed
                batch.done.set_exception(exc)
                raise
            finishing.add_done_callback(batch.settle)

    return app


app = create_app(Settings.from_env())
