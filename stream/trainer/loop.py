"""`sessionrec trainer`: read answered clicks into the window; whenever a cadence is due, one fine-tune cycle.

It learns only from clicks the workers have already answered: it reads the
recommendations topic, where each recommendation names the click it answers,
so the list scored against a click was always computed before any model
learned from that click (DESIGN rule 6).

Cadences, any of which makes a cycle due: wall-clock seconds, answered clicks,
event-time seconds. Counting clicks (or event time) makes a replay at full
speed learn what a time-scaled one learns, up to how long a fine-tune takes:
the stream does not wait for it.
"""

from __future__ import annotations

import asyncio
import logging

from sessionrec.replay.kafka.clients import fetch, start_consumer
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.trainer.cycle import Trainer
from sessionrec.stream.watch.prometheus import TrainerMetrics

log = logging.getLogger(__name__)


class Cadence:
    """When the next cycle is due, by wall clock, answered clicks and event time (0 turns one off)."""

    def __init__(self, settings: Settings, now: float) -> None:
        self.settings = settings
        self._wall, self._clicks, self._event = now, 0, None

    def due(self, now: float, clicks: int, event_ts: float) -> bool:
        s = self.settings
        if self._event is None and event_ts > float("-inf"):
            self._event = event_ts
        return ((s.trainer_interval_s > 0 and now - self._wall >= s.trainer_interval_s)
                or (s.trainer_every_clicks > 0 and clicks - self._clicks >= s.trainer_every_clicks)
                or (s.trainer_every_event_s > 0 and self._event is not None and event_ts - self._event >= s.trainer_every_event_s))

    def started(self, now: float, clicks: int, event_ts: float) -> None:
        self._wall, self._clicks, self._event = now, clicks, event_ts


async def run_trainer(settings: Settings, store: RedisStore, stop: asyncio.Event, metrics: TrainerMetrics) -> None:
    """Read answered clicks into the window; whenever a cadence is due, one fine-tune cycle (counted in ``metrics``)."""
    trainer = Trainer(settings, store)
    consumer = await start_consumer(settings, settings.recs_topic, group=f"{settings.app_id}-trainer", fetch_wait_ms=200, auto_commit=True)
    training: asyncio.Task | None = None
    loop = asyncio.get_running_loop()
    cadence = Cadence(settings, loop.time())
    log.info("learning from %s (group %s-trainer)", settings.recs_topic, settings.app_id)
    try:
        while not stop.is_set():
            fetched = await fetch(consumer, timeout_ms=500, max_records=5000, what="recommendations")
            for messages in fetched.values():
                for message in messages:
                    trainer.observe(message.value)
                metrics.answered.inc(len(messages))
            metrics.window_sessions.set(len(trainer.window))
            if training is not None and training.done():
                if training.exception() is not None:
                    log.error("fine-tuning failed: %r", training.exception())
                elif (cycle := training.result()) is not None:
                    log.info("%s", cycle.line())
                    metrics.record_cycle(cycle.decision, cycle.seconds, (cycle.served or {}).get("mrr@20"), (cycle.tuned or {}).get("mrr@20"))
                training = None
            window = trainer.window
            if training is None and cadence.due(loop.time(), window.added, window.newest_ts):
                cadence.started(loop.time(), window.added, window.newest_ts)
                training = asyncio.create_task(trainer.cycle())
    finally:
        if training is not None:
            await training
        await consumer.stop()
