"""One fine-tune cycle: the served model, fine-tuned on the window's older clicks, promoted when it predicts newer sessions better.

The gate is honest: the held-out sessions begin after every click the
candidate trained on (window.split_by_time), a cycle runs only when enough
clicks were answered since the previous one, and the candidate must beat the
served model's MRR@20 on them. While an operator has pinned a version
(`sessionrec models pin`) cycles are skipped, and a pin set during a
fine-tune keeps the candidate out. Every cycle, promoted or not, is recorded in
Redis (`sessionrec cycles` prints them). Training runs in a thread, so reading
the stream never stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from sessionrec.model import checkpoint
from sessionrec.model.checkpoint import Checkpoint, network_from_bytes
from sessionrec.model.evaluate import Report, served_report
from sessionrec.model.finetune import fine_tune
from sessionrec.model.vocab import Vocabulary
from sessionrec.stream.redis.registry import Pinned
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.trainer.window import SessionWindow, split_by_time, to_sessions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cycle:
    """What one cycle saw and decided; its JSON form is the record in Redis."""

    at: float  # wall-clock end of the cycle
    decision: str  # "promoted", "kept" (the candidate was not better) or "skipped"
    reason: str
    parent: str | None  # the served version the candidate started from
    version: str | None  # the promoted version
    new_clicks: int  # answered clicks since the previous cycle
    window_sessions: int
    train_sessions: int = 0
    train_clicks: int = 0
    valid_sessions: int = 0
    valid_targets: int = 0
    cut_ts: float | None = None  # held-out sessions begin at or after this event time
    items: int = 0  # items the candidate knows
    served: dict[str, float] | None = None  # held-out HR@20 and MRR@20 of the served model
    tuned: dict[str, float] | None = None  # ... and of the candidate
    seconds: float = 0.0

    @property
    def promoted(self) -> str | None:
        return self.version if self.decision == "promoted" else None

    @property
    def served_mrr(self) -> float:
        return (self.served or {}).get("mrr@20", 0.0)

    @property
    def tuned_mrr(self) -> float:
        return (self.tuned or {}).get("mrr@20", 0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        if self.decision == "skipped":
            return f"skipped: {self.reason}"
        verdict = f"promoted {self.version}" if self.promoted else f"kept {self.parent} ({self.reason})"
        return (f"fine-tuned on {self.train_sessions:,} sessions ({self.train_clicks:,} clicks, {self.items:,} items), "
                f"held out {self.valid_sessions:,} newer sessions: MRR@20 {self.served_mrr:.4f} -> {self.tuned_mrr:.4f}; {verdict}")


def _held_out(report: Report) -> dict[str, float]:
    return {"hr@20": report.overall.recall_at_20, "mrr@20": report.overall.mrr_at_20}


class Trainer:
    def __init__(self, settings: Settings, store: RedisStore) -> None:
        self.settings = settings
        self.store = store
        self.window = SessionWindow(settings.trainer_window, settings.trainer_session_clicks)
        self._trained_at = 0  # window.added at the last cycle that ran

    def observe(self, value: bytes) -> bool:
        """Take one recommendation (the click it answers); False for one seen before."""
        rec = json.loads(value)
        return self.window.add(rec["session_id"], str(rec["item_id"]), float(rec["ts"]), rec.get("partition"), rec.get("offset"))

    @property
    def new_clicks(self) -> int:
        return self.window.added - self._trained_at

    async def cycle(self) -> Cycle | None:
        """Fine-tune and decide, or None when there is too little to learn from (nothing is recorded then)."""
        started, new_clicks = time.monotonic(), self.new_clicks
        sessions = self.window.sessions()
        if len(sessions) < self.settings.trainer_min_sessions or new_clicks < max(1, self.settings.trainer_min_new_clicks):
            return None
        version = await self.store.registry.current()
        if version is None:
            return None
        self._trained_at = self.window.added
        split = split_by_time(sessions, self.settings.trainer_holdout)
        base = dict(at=time.time(), parent=version, new_clicks=new_clicks, window_sessions=len(sessions), train_sessions=len(split.train),
                    train_clicks=sum(map(len, split.train)), valid_sessions=len(split.valid), cut_ts=split.cut)
        if not split.train or not split.valid:
            return await self._record(Cycle(decision="skipped", reason="no sessions on one side of the time split", version=None, **base))
        pinned = await self.store.registry.pinned()
        if pinned is not None:
            return await self._record(Cycle(decision="skipped", reason=f"model {pinned} is pinned", version=None, **base))
        blob, meta = await self.store.registry.load(version)
        net, config, neighbours = network_from_bytes(blob, meta)  # the model's trained neighbours: the same for both in the gate
        raws = list(dict.fromkeys(item for clicks in sessions for item, _ in clicks))
        index = dict(zip(raws, await self.store.vocab.indices(raws)))
        n_items = max(net.n_items, max(index.values()) + 1)
        timeout = self.settings.serving_rules(config.serving).session_timeout
        train, valid = to_sessions(split.train, index, timeout), to_sessions(split.valid, index, timeout)

        def work() -> tuple:
            tuned, _ = fine_tune(net, config, train, n_items, self.settings.trainer_epochs)
            return tuned, *(served_report(model, config.serving, valid, n_items, neighbours=neighbours) for model in (net, tuned))

        tuned, served, candidate = await asyncio.to_thread(work)
        base.update(items=n_items, valid_targets=served.overall.targets, served=_held_out(served), tuned=_held_out(candidate))
        if candidate.overall.mrr_at_20 <= served.overall.mrr_at_20:
            return await self._record(Cycle(decision="kept", reason="the candidate was not better on the held-out sessions", version=None,
                                            seconds=time.monotonic() - started, **base))
        items = await self.store.vocab.all_items()
        ckpt = Checkpoint(net=tuned, config=config, vocab=Vocabulary(items[:n_items]), neighbours=neighbours, parent=version,
                          data={"sessions": len(split.train), "clicks": int(len(train.items)), "source": "stream", "cut_ts": split.cut},
                          metrics={"held_out": {"sessions": len(split.valid), "served": _held_out(served), "tuned": _held_out(candidate)}})
        try:
            promoted = await self.store.registry.promote(*checkpoint.to_bytes(ckpt))
        except Pinned as exc:
            return await self._record(Cycle(decision="kept", reason=f"better, but model {exc.version} was pinned meanwhile", version=None,
                                            seconds=time.monotonic() - started, **base))
        return await self._record(Cycle(decision="promoted", reason="better on the held-out sessions", version=promoted,
                                        seconds=time.monotonic() - started, **base))

    async def _record(self, cycle: Cycle) -> Cycle:
        await self.store.cycles.append(cycle.to_dict())
        return cycle
