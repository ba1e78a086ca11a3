"""The trainer's window: the most recently active sessions' answered clicks, bounded, as training sessions."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from sessionrec.model.sessions import Sessions

Clicks = list[tuple[str, float]]  # (raw item id, event time) in click order


class SessionWindow:
    """The most recently active sessions' clicks: at most ``max_sessions`` sessions of ``max_clicks`` clicks.

    A recommendation redelivered by Kafka (at-least-once output) is recognised
    by its click's (partition, offset) and not added twice: the clicks of a
    partition arrive in offset order, so one high-water mark per partition
    suffices.
    """

    def __init__(self, max_sessions: int, max_clicks: int) -> None:
        self.max_sessions = max_sessions
        self.max_clicks = max_clicks
        self._sessions: OrderedDict[str, Clicks] = OrderedDict()
        self._applied: dict[int, int] = {}  # click partition -> highest offset added
        self.added = 0  # clicks added since the window was made
        self.newest_ts = float("-inf")  # event time of the newest click added

    def add(self, session_id: str, item: str, ts: float, partition: int | None = None, offset: int | None = None) -> bool:
        """Add one answered click; False (and nothing changes) when that click was added before."""
        if partition is not None and offset is not None:
            if offset <= self._applied.get(partition, -1):
                return False
            self._applied[partition] = offset
        clicks = self._sessions.pop(session_id, [])
        clicks.append((item, ts))
        self._sessions[session_id] = clicks[-self.max_clicks :]
        if len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        self.added += 1
        self.newest_ts = max(self.newest_ts, ts)
        return True

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[Clicks]:
        """Sessions with something to predict, least recently active first."""
        return [clicks for clicks in self._sessions.values() if len(clicks) >= 2]


@dataclass(frozen=True)
class TimeSplit:
    """Training clicks before ``cut``; held-out sessions that begin at or after it, newer than anything trained on."""

    train: list[Clicks]
    valid: list[Clicks]
    cut: float  # event time


def split_by_time(sessions: list[Clicks], holdout: float) -> TimeSplit:
    """Hold out the newest ``holdout`` share of sessions by start time; train on every click before the first of them."""
    starts = sorted(clicks[0][1] for clicks in sessions)
    cut = starts[min(len(starts) - 1, int(len(starts) * (1.0 - holdout)))] if starts else 0.0
    valid = [clicks for clicks in sessions if clicks[0][1] >= cut]
    train = [before for clicks in sessions if len(before := [c for c in clicks if c[1] < cut]) >= 2]
    return TimeSplit(train, valid, cut)


def to_sessions(sessions: list[Clicks], index: dict[str, int], timeout_s: float) -> Sessions:
    items = np.array([index[item] for clicks in sessions for item, _ in clicks], dtype=np.int64)
    ts = np.array([t for clicks in sessions for _, t in clicks])
    lengths = np.array([len(clicks) for clicks in sessions])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    fresh = np.zeros(len(items), dtype=bool)
    fresh[offsets[:-1]] = True
    if timeout_s > 0:
        fresh[1:] |= np.diff(ts) > timeout_s
    return Sessions(items, offsets, fresh, np.argsort(ts[offsets[:-1]], kind="stable"))
