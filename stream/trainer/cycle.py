"""The online trainer: fine-tunes the served model on recent sessions, promotes it when it predicts them better.

It learns only from clicks the workers have already answered: it reads the
recommendations topic, where each recommendation names the click it answers,
so the list scored against a click was always computed before any model
learned from that click (DESIGN rule 6). The newest sessions are held out:
the fine-tuned model is promoted only if it predicts their clicks at least
as well as the served one (MRR@20). Training runs in a thread, so reading
the stream never stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from sessionrec.model.checkpoint import Checkpoint, network_from_bytes
from sessionrec.model.finetune import fine_tune, next_click_report
from sessionrec.model.sessions import Sessions
from sessionrec.model.vocab import Vocabulary
from sessionrec.replay.kafka.clients import start_client
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.registry import ModelRegistry
from sessionrec.stream.settings import Settings
from sessionrec.stream.redis.vocabulary import SharedVocabulary

log = logging.getLogger(__name__)


class SessionWindow:
    """The most recently active sessions' clicks: at most ``max_sessions`` sessions of ``max_clicks`` clicks."""

    def __init__(self, max_sessions: int, max_clicks: int) -> None:
        self.max_sessions = max_sessions
        self.max_clicks = max_clicks
        self._sessions: OrderedDict[str, list[tuple[str, float]]] = OrderedDict()

    def add(self, session_id: str, item: str, ts: float) -> None:
        clicks = self._sessions.pop(session_id, [])
        clicks.append((item, ts))
        self._sessions[session_id] = clicks[-self.max_clicks :]
        if len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[list[tuple[str, float]]]:
        """Sessions with something to predict, least recently active first."""
        return [clicks for clicks in self._sessions.values() if len(clicks) >= 2]


def to_sessions(sessions: list[list[tuple[str, float]]], index: dict[str, int], timeout_s: float) -> Sessions:
    items = np.array([index[item] for clicks in sessions for item, _ in clicks], dtype=np.int64)
    ts = np.array([t for clicks in sessions for _, t in clicks])
    lengths = np.array([len(clicks) for clicks in sessions])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    fresh = np.zeros(len(items), dtype=bool)
    fresh[offsets[:-1]] = True
    if timeout_s > 0:
        fresh[1:] |= np.diff(ts) > timeout_s
    return Sessions(items, offsets, fresh, np.argsort(ts[offsets[:-1]], kind="stable"))


@dataclass(frozen=True)
class Cycle:
    sessions: int
    clicks: int
    items: int  # vocabulary size the fine-tuned model knows
    served_mrr: float  # on the held-out newest sessions
    tuned_mrr: float
    promoted: str | None  # new version, or None when the served model stayed

    def line(self) -> str:
        verdict = f"promoted {self.promoted}" if self.promoted else "kept the served model"
        return (f"fine-tuned on {self.sessions:,} sessions ({self.clicks:,} clicks, {self.items:,} items): "
                f"held-out MRR@20 {self.served_mrr:.4f} -> {self.tuned_mrr:.4f}; {verdict}")


class Trainer:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self.vocab = SharedVocabulary(redis, self.keys)
        self.registry = ModelRegistry(redis, self.keys)
        self.window = SessionWindow(settings.trainer_window, settings.history_len)

    def observe(self, value: bytes) -> None:
        rec = json.loads(value)
        self.window.add(rec["session_id"], str(rec["item_id"]), float(rec["ts"]))

    async def cycle(self) -> Cycle | None:
        sessions = self.window.sessions()
        if len(sessions) < self.settings.trainer_min_sessions:
            return None
        version = await self.registry.current()
        if version is None:
            return None
        blob, meta = await self.registry.load(version)
        net, config = network_from_bytes(blob, meta)
        raws = list(dict.fromkeys(item for clicks in sessions for item, _ in clicks))
        index = dict(zip(raws, await self.vocab.indices(raws)))
        n_items = max(net.n_items, max(index.values()) + 1)
        held = max(1, int(len(sessions) * self.settings.trainer_holdout))
        timeout = self.settings.session_timeout_s
        train, valid = to_sessions(sessions[:-held], index, timeout), to_sessions(sessions[-held:], index, timeout)

        def work() -> tuple:
            tuned, _ = fine_tune(net, config, train, n_items, self.settings.trainer_epochs)
            served = next_click_report(net, config, valid, n_items).overall.mrr_at_20
            return tuned, served, next_click_report(tuned, config, valid, n_items).overall.mrr_at_20

        tuned, served_mrr, tuned_mrr = await asyncio.to_thread(work)
        promoted = None
        if tuned_mrr >= served_mrr:
            items = await self.vocab.all_items()
            ckpt = Checkpoint(net=tuned, config=config, vocab=Vocabulary(items[:n_items]), parent=version,
                              data={"sessions": len(sessions) - held, "clicks": int(len(train.items)), "source": "stream"},
                              metrics={"held_out": {"sessions": held, "served_mrr@20": served_mrr, "tuned_mrr@20": tuned_mrr}})
            promoted = await self.registry.promote(ckpt)
        return Cycle(len(sessions), int(len(train.items) + len(valid.items)), n_items, served_mrr, tuned_mrr, promoted)


async def run_trainer(settings: Settings, redis: Redis, stop: asyncio.Event) -> None:
    """Read answered clicks into the window; every interval, one fine-tune cycle."""
    trainer = Trainer(settings, redis)
    consumer = AIOKafkaConsumer(
        settings.recs_topic, **settings.kafka_client_kwargs(), group_id=f"{settings.app_id}-trainer", auto_offset_reset="earliest",
        session_timeout_ms=int(settings.kafka_session_timeout_s * 1000), heartbeat_interval_ms=1000, fetch_max_wait_ms=200,
    )
    await start_client(consumer, settings.kafka_bootstrap)
    training: asyncio.Task | None = None
    loop = asyncio.get_running_loop()
    next_cycle = loop.time() + settings.trainer_interval_s
    try:
        while not stop.is_set():
            try:
                fetched = await consumer.getmany(timeout_ms=500, max_records=5000)
            except KafkaError as exc:
                log.warning("reading recommendations failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
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
