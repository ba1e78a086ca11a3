"""`sessionrec trainer`: read answered clicks into the window; every interval, one fine-tune cycle.

It learns only from clicks the workers have already answered: it reads the
recommendations topic, where each recommendation names the click it answers,
so the list scored against a click was always computed before any model
learned from that click (DESIGN rule 6).
"""

from __future__ import annotations

import asyncio
import logging

from sessionrec.replay.kafka.clients import fetch, start_consumer
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.trainer.cycle import Trainer

log = logging.getLogger(__name__)


async def run_trainer(settings: Settings, store: RedisStore, stop: asyncio.Event) -> None:
    """Read answered clicks into the window; every interval, one fine-tune cycle."""
    trainer = Trainer(settings, store)
    consumer = await start_consumer(settings, settings.recs_topic, group=f"{settings.app_id}-trainer", fetch_wait_ms=200, auto_commit=True)
    training: asyncio.Task | None = None
    loop = asyncio.get_running_loop()
    next_cycle = loop.time() + settings.trainer_interval_s
    try:
        while not stop.is_set():
            fetched = await fetch(consumer, timeout_ms=500, max_records=5000, what="recommendations")
            for messages in fetched.values():
                for message in messages:
                    trainer.observe(message.value)
            if training is not None and training.done():
                if training.exception() is not None:
                    log.error("fine-tuning failed: %r", training.exception())
                elif training.result() is not None:
                    log.info("%s", training.result().line())
                training = None
            if training is None and loop.time() >= next_cycle:
                training = asyncio.create_task(trainer.cycle())
                next_cycle = loop.time() + settings.trainer_interval_s
    finally:
        if training is not None:
            await training
        await consumer.stop()
