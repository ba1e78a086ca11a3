"""The reference pipeline of `sessionrec bench stream`: a naive per-event Faust agent.

What one would write first with Faust: an agent on the clicks topic that
takes one event at a time from Faust's stream, reads its session state from
Redis, steps the model for that one click, sends the recommendation with
``topic.send`` and writes the state back. It serves the same model, keeps the
same Redis state and sends the same messages as the worker (it runs the
worker's own compute and commit, on batches of one), so the bench's ratio is
the worker's design (aiokafka micro-batches, one model call and one Redis
round trip per batch) against Faust's per-event path, nothing else. (It
writes a state without waiting for Kafka to acknowledge its recommendation,
which the worker does wait for: if anything, the reference is favoured.)
"""

from __future__ import annotations

import time

import faust

from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.prometheus import WorkerMetrics
from sessionrec.stream.worker.app import faust_app
from sessionrec.stream.worker.processor import Record
from sessionrec.stream.worker.serving import Serving


def create_reference_app(settings: Settings) -> faust.App:
    app = faust_app(settings, f"{settings.app_id}-reference")
    clicks = app.topic(settings.clicks_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    recommendations = app.topic(settings.recs_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    serving = app.service(Serving(settings, WorkerMetrics()))

    @app.agent(clicks, name="recommend-each")
    async def recommend_each(stream: faust.StreamT[bytes]) -> None:
        applier = (await serving.ready()).applier
        async for event in stream.events():
            message = event.message
            record = Record(message.partition, message.offset, int(message.timestamp * 1000), message.key, message.value)
            computed = await applier.compute([record], serving.engine)
            for key, value in computed.recommendations:
                await recommendations.send(key=key, value=value)
            await applier.commit(computed, computed.latency(time.time()))

    return app
