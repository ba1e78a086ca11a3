"""One fine-tune cycle: the served model, fine-tuned on the window's sessions, promoted when it predicts better.

The newest sessions are held out: the fine-tuned model is promoted only if it
predicts their clicks at least as well as the served one (MRR@20). Training
runs in a thread, so reading the stream never stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace

from sessionrec.model import checkpoint
from sessionrec.model.checkpoint import Checkpoint, network_from_bytes
from sessionrec.model.evaluate import served_report
from sessionrec.model.finetune import fine_tune
from sessionrec.model.vocab import Vocabulary
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.trainer.window import SessionWindow, to_sessions

log = logging.getLogger(__name__)


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
    def __init__(self, settings: Settings, store: RedisStore) -> None:
        self.settings = settings
        self.vocab = store.vocab
        self.registry = store.registry
        self.window = SessionWindow(settings.trainer_window, settings.trainer_session_clicks)

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
        timeout = replace(config.serving, **self.settings.serving_overrides()).session_timeout
        train, valid = to_sessions(sessions[:-held], index, timeout), to_sessions(sessions[-held:], index, timeout)

        def work() -> tuple:
            tuned, _ = fine_tune(net, config, train, n_items, self.settings.trainer_epochs)
            served = served_report(net, config.serving, valid, n_items).overall.mrr_at_20
            return tuned, served, served_report(tuned, config.serving, valid, n_items).overall.mrr_at_20

        tuned, served_mrr, tuned_mrr = await asyncio.to_thread(work)
        promoted = None
        if tuned_mrr >= served_mrr:
            items = await self.vocab.all_items()
            ckpt = Checkpoint(net=tuned, config=config, vocab=Vocabulary(items[:n_items]), parent=version,
                              data={"sessions": len(sessions) - held, "clicks": int(len(train.items)), "source": "stream"},
                              metrics={"held_out": {"sessions": held, "served_mrr@20": served_mrr, "tuned_mrr@20": tuned_mrr}})
            promoted = await self.registry.promote(*checkpoint.to_bytes(ckpt))
        return Cycle(len(sessions), int(len(train.items) + len(valid.items)), n_items, served_mrr, tuned_mrr, promoted)
