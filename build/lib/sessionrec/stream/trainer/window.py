"""The trainer's window: the most recently active sessions' answered clicks, bounded, as training sessions."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from sessionrec.model.sessions import Sessions


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
