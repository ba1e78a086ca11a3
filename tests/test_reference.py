"""The bench's reference pipeline (a naive per-event Faust agent) serves what the worker serves: the ratio compares designs, not models."""

from __future__ import annotations

import asyncio
import uuid

from sessionrec.model.data import data_dir
from sessionrec.replay.replayer import replay
from sessionrec.replay.source import load_stream
from sessionrec.stream.local.harness import RecommendationReader, WorkerProcess
from sessionrec.stream.settings import Settings

CLICKS = 300


def served(settings: Settings, clicks, args: tuple[str, ...]) -> dict[tuple[int, int], list[str]]:  # noqa: ANN001
    worker = WorkerProcess(settings, args=args)

    async def go() -> dict[tuple[int, int], list[str]]:
        async with RecommendationReader(settings) as reader:
            await replay(clicks, topic=settings.clicks_topic, kafka=settings, progress=False)
            await reader.wait_for(len(clicks), timeout_s=120, check=worker.check)
            return {key: r.rec["item_ids"] for key, r in reader.received.items()}

    try:
        return asyncio.run(go())
    finally:
        worker.stop()


def test_the_reference_agent_sends_the_workers_lists(kafka_bootstrap, redis_url, small_model):
    clicks = load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=CLICKS)
    runs = [served(Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, namespace=f"ref-{uuid.uuid4().hex[:8]}", model_dir=str(small_model),
                            web_port=0, learn_online=False), clicks, args) for args in ((), ("--reference",))]
    assert len(runs[0]) == CLICKS and runs[0] == runs[1]
