"""Heuristic H: the session's own items, then windowed item co-occurrence, then popularity, learned click by click.

The online baseline the stream is measured against (`sessionrec bench online`),
exactly as the learning issue defines it. Clicks come in event-time order. Each
click after a session's first is scored against the list made after the
session's previous click; a pause over ``timeout`` clears the session's
history (and its learning window), but the click is still scored against the
list made before the pause. Then the click y is learned: for each of the
session's last ``window`` clicks h before it (w = 0 for the most recent), if
h != y, co[h][y] and co[y][h] both grow by 1/(w + 1); popularity[y] grows by 1.
The training sessions are learned the same way first, each in time order.

The list after a click: the session's distinct items, most recent first; then
candidates scored by summing, over the session's last ``window`` clicks x
(w = 0 the most recent), c / (w + 1) for each of x's ``neighbours`` largest
co-occurrence counts c, best first; then the most popular items; the first
``list_len`` distinct. Ties keep the order in which things were first seen.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from operator import itemgetter

import numpy as np
import pandas as pd

from sessionrec.model.data import ITEM, SESSION, TIME


class PopularTop:
    """The ``size`` most clicked items, kept as clicks arrive; ties go to the item clicked first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.count: dict[str, int] = {}
        self.first: dict[str, int] = {}
        self.top: list[str] = []

    def _key(self, item: str) -> tuple[int, int]:
        return (-self.count[item], self.first[item])

    def add(self, item: str) -> None:
        if item not in self.count:
            self.count[item], self.first[item] = 0, len(self.first)
        self.count[item] += 1
        if item in self.top or len(self.top) < self.size or self._key(item) < self._key(self.top[-1]):
            if item not in self.top:
                self.top.append(item)
            self.top.sort(key=self._key)
            del self.top[self.size :]


class HeuristicH:
    def __init__(self, window: int = 5, neighbours: int = 50, list_len: int = 20, timeout: float = 1800.0) -> None:
        self.window = window
        self.neighbours = neighbours
        self.list_len = list_len
        self.timeout = timeout
        self.co: dict[str, dict[str, float]] = defaultdict(dict)
        self.popular = PopularTop(3 * list_len)

    def learn(self, before: list[str], y: str) -> None:
        """Click ``y`` after the session's clicks ``before`` (oldest first)."""
        for w, h in enumerate(before[::-1][: self.window]):
            if h != y:
                self.co[h][y] = self.co[h].get(y, 0.0) + 1.0 / (w + 1)
                self.co[y][h] = self.co[y].get(h, 0.0) + 1.0 / (w + 1)
        self.popular.add(y)

    def recommend(self, history: list[str]) -> list[str]:
        """The list after the session's last click (``history`` oldest first, ending with it)."""
        out = list(dict.fromkeys(reversed(history)))[: self.list_len]
        scores: dict[str, float] = {}
        for w, x in enumerate(history[::-1][: self.window]):
            for item, c in heapq.nlargest(self.neighbours, self.co.get(x, {}).items(), key=itemgetter(1)):
                scores[item] = scores.get(item, 0.0) + c / (w + 1)
        seen = set(out)
        for item in [i for i, _ in sorted(scores.items(), key=itemgetter(1), reverse=True)] + self.popular.top:
            if len(out) >= self.list_len:
                break
            if item not in seen:
                out.append(item)
                seen.add(item)
        return out

    def learn_sessions(self, frame: pd.DataFrame) -> None:
        """Learn every session of a click frame, each in time order, with the same pause rule."""
        for _, session in frame.sort_values(TIME, kind="stable").groupby(SESSION, sort=False):
            history: list[str] = []
            last = None
            for y, ts in zip(session[ITEM].tolist(), session[TIME].tolist()):
                if last is not None and self.timeout and ts - last > self.timeout:
                    history = []
                self.learn(history, y)
                history.append(y)
                last = ts

    def replay(self, frame: pd.DataFrame, learn: bool = True) -> np.ndarray:
        """Prequential replay of clicks in stream order; the 1-based rank of each scored click (0 = not listed)."""
        state: dict[str, tuple[float, list[str], list[str]]] = {}  # session -> (last ts, history, last list)
        ranks = []
        for s, y, ts in zip(frame[SESSION].tolist(), frame[ITEM].tolist(), frame[TIME].tolist()):
            history: list[str] = []
            if s in state:
                last, history, listed = state[s]
                ranks.append(listed.index(y) + 1 if y in listed else 0)
                if self.timeout and ts - last > self.timeout:
                    history = []
            if learn:
                self.learn(history, y)
            history = [*history, y]
            state[s] = (ts, history, self.recommend(history))
        return np.array(ranks, dtype=np.int64)
