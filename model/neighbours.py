"""Item neighbours: which items occur near each other in sessions, learned click by click, bounded.

Most items of a live shop are new (10,064 of the 11,568 items of the test clicks
never occur in training), so a network trained last night cannot recommend
them; what can is the stream itself. When a session clicks y, y and each of the
session's last ``window`` clicks h before it become neighbours of each other,
by 1/(w + 1) (w = 0 for the most recent h). Only a session's first click on y
adds pairs: repeats say little about what goes together. Every click counts
towards y's popularity and records when y was last clicked.

A list reads the neighbours of the session's last ``reads`` clicks (weighted
1/(w + 1)), then, through the ``hop2`` best of those candidates, their
neighbours (weighted ``hop2_weight`` times the candidate's share): items that
co-occur with what co-occurs with the session. A candidate clicked recently in
the stream is boosted by ``1 + age_boost * exp(-age / age_tau_s)``.

Bounded: at most ``width`` neighbours per item (a new one evicts the weakest)
and at most ``max_items`` items with neighbours (the least recently updated
goes). Everything is batched numpy: the worker learns a micro-batch at a time.
The rules and their parameters were chosen by a prequential replay of the
electronics clicks (see the README, "Learning from the stream").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sessionrec.model.rowwise import member, top_per_row

PAD = -1


@dataclass(frozen=True)
class NeighbourRules:
    width: int = 50  # neighbours kept per item
    window: int = 5  # learning: pairs with the last `window` clicks before the clicked item
    reads: int = 2  # scoring: neighbours of the session's last `reads` clicks
    hop2: int = 3  # ... and of the best `hop2` of those candidates
    hop2_weight: float = 0.1
    age_boost: float = 3.0  # candidates clicked in the stream lately weigh up to 1 + age_boost times more
    age_tau_s: float = 7 * 86400.0  # event-time scale of "lately"


@dataclass(frozen=True)
class Increments:
    """What a batch of clicks teaches: neighbour pairs and clicks (in any order: sums commute)."""

    rows: np.ndarray  # int64 [P]: the item whose neighbour grows
    cols: np.ndarray  # int64 [P]: the neighbour
    weights: np.ndarray  # float32 [P]
    clicked: np.ndarray  # int64 [C]: every clicked item, for popularity
    ts: np.ndarray  # float64 [C]: when each was clicked (event time); NaN = not a stream click

    @classmethod
    def empty(cls) -> Increments:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.float64))

    @classmethod
    def concat(cls, parts: list[Increments]) -> Increments:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("rows", "cols", "weights", "clicked", "ts")))

    def to_bytes(self) -> bytes:
        """Packed for the wire (the learning feed): counts, then the arrays."""
        head = np.array([len(self.rows), len(self.clicked)], dtype=np.int64)
        return b"".join(a.tobytes() for a in (head, self.rows.astype(np.int32), self.cols.astype(np.int32), self.weights.astype(np.float32),
                                               self.clicked.astype(np.int32), self.ts.astype(np.float64)))

    @classmethod
    def from_bytes(cls, blob: bytes) -> Increments:
        pairs, clicks = np.frombuffer(blob, np.int64, 2)
        at = 16
        arrays = []
        if min(pairs, clicks) < 0 or len(blob) != 16 + 12 * pairs + 12 * clicks:
            raise ValueError(f"a lesson of {len(blob)} bytes does not hold {pairs} pairs and {clicks} clicks")
        for kind, count, wanted in ((np.int32, pairs, np.int64), (np.int32, pairs, np.int64), (np.float32, pairs, np.float32),
                                    (np.int32, clicks, np.int64), (np.float64, clicks, np.float64)):
            arrays.append(np.frombuffer(blob, kind, int(count), at).astype(wanted))
            at += int(count) * np.dtype(kind).itemsize
        return cls(*arrays)


def increments(history: np.ndarray, ts: np.ndarray, window: int, first_only: bool = True) -> Increments:
    """What clicks teach, from each click's session history: ``history`` [B, L] ends with the click, PAD on the left.

    With ``first_only`` (the stream), pairs only where the clicked item is new to the remembered session.
    """
    y = history[:, -1].astype(np.int64)
    before = history[:, -1 - window : -1].astype(np.int64)  # most recent last
    first = ~(history[:, :-1] == y[:, None]).any(axis=1) if first_only else np.ones(len(y), bool)
    age = np.arange(before.shape[1] - 1, -1, -1)  # w of each column: 0 for the most recent
    keep = (before != PAD) & (before != y[:, None]) & first[:, None]
    h, w = before[keep], (1.0 / (age[None, :] + 1.0)).repeat(len(before), 0)[keep].astype(np.float32)
    yy = np.broadcast_to(y[:, None], before.shape)[keep]
    return Increments(np.concatenate([h, yy]), np.concatenate([yy, h]), np.concatenate([w, w]), y, ts.astype(np.float64))


class NeighbourTable:
    """Neighbour rows in fixed-width arrays: learned a batch at a time, read a batch of sessions at a time."""

    def __init__(self, rules: NeighbourRules = NeighbourRules(), max_items: int = 100_000) -> None:
        self.rules = rules
        self.max_items = max_items
        self.slot_of = np.full(0, -1, np.int64)  # item -> its row's slot, -1 without one
        self.item_of = np.full(0, -1, np.int64)  # slot -> item
        self.nb = np.full((0, rules.width), PAD, np.int64)  # slot -> neighbour items
        self.w = np.zeros((0, rules.width), np.float32)  # slot -> their weights
        self.touched = np.zeros(0, np.int64)  # slot -> tick of its last update (least recent goes first)
        self.pop = np.zeros(0, np.float64)  # item -> clicks
        self.last = np.full(0, np.nan)  # item -> event time of its last stream click
        self._tick = 0
        self._by_clicks: tuple[np.ndarray, int] | None = None  # (most clicked items, most first; the count asked): until the next lesson

    # --- learning -------------------------------------------------------------------------------

    def learn(self, inc: Increments) -> None:
        self._tick += 1
        top = max([-1, *(int(a.max()) for a in (inc.rows, inc.cols, inc.clicked) if len(a))])
        self._grow_items(top + 1)
        np.add.at(self.pop, inc.clicked, 1.0)
        self._by_clicks = None
        stream = ~np.isnan(inc.ts)
        if stream.any():
            last = np.where(np.isnan(self.last), -np.inf, self.last)
            np.maximum.at(last, inc.clicked[stream], inc.ts[stream])
            self.last = np.where(np.isinf(last), np.nan, last)
        if len(inc.rows):
            self._add_pairs(inc.rows, inc.cols, inc.weights)

    def _add_pairs(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        span = len(self.slot_of)
        keys, inverse = np.unique(rows * span + cols, return_inverse=True)
        sums = np.bincount(inverse, weights=weights).astype(np.float32)
        rows, cols = keys // span, keys % span
        slots = self._slots(rows)
        kept = slots >= 0
        slots, cols, sums = slots[kept], cols[kept], sums[kept]
        match = self.nb[slots] == cols[:, None]
        found = match.any(axis=1)
        self.w[slots[found], match[found].argmax(axis=1)] += sums[found]
        slots, cols, sums = slots[~found], cols[~found], sums[~found]
        # Insertions in order, each evicting its row's weakest (or an empty place): a row's n-th insertion goes in round n,
        # every row's at once.
        order = np.argsort(slots, kind="stable")
        slots, cols, sums = slots[order], cols[order], sums[order]
        rounds = np.arange(len(slots)) - np.searchsorted(slots, slots)
        by_round = np.argsort(rounds, kind="stable")
        for now in np.split(by_round, np.cumsum(np.bincount(rounds))[:-1]):
            s = slots[now]
            place = np.where(self.nb[s] == PAD, -np.inf, self.w[s]).argmin(axis=1)
            self.nb[s, place], self.w[s, place] = cols[now], sums[now]

    def _slots(self, items: np.ndarray) -> np.ndarray:
        """The slots of ``items``' rows, made where missing; the least recently updated rows give way when full."""
        unique = np.unique(items)
        new = unique[self.slot_of[unique] < 0]
        if len(new):
            free = np.flatnonzero(self.item_of < 0)
            if len(free) < len(new):
                self._grow_slots(min(self.max_items, max(2 * len(self.item_of), len(self.item_of) + len(new) - len(free))))
                free = np.flatnonzero(self.item_of < 0)
            if len(free) < len(new):  # full: evict the least recently updated rows this batch does not touch
                used = np.flatnonzero(self.item_of >= 0)
                spare = used[~np.isin(self.item_of[used], unique)]
                old = spare[np.argsort(self.touched[spare], kind="stable")[: len(new) - len(free)]]
                self.slot_of[self.item_of[old]] = -1
                self.item_of[old], self.nb[old], self.w[old] = -1, PAD, 0.0
                free = np.flatnonzero(self.item_of < 0)
            new = new[: len(free)]  # more new rows in one batch than the table holds: the rest are not learned
            self.item_of[free[: len(new)]], self.slot_of[new] = new, free[: len(new)]
        slots = self.slot_of[items]
        self.touched[slots[slots >= 0]] = self._tick
        return slots

    def _grow_items(self, size: int) -> None:
        if size > len(self.slot_of):
            extra = size - len(self.slot_of) + 1024
            self.slot_of = np.concatenate([self.slot_of, np.full(extra, -1, np.int64)])
            self.pop = np.concatenate([self.pop, np.zeros(extra)])
            self.last = np.concatenate([self.last, np.full(extra, np.nan)])

    def _grow_slots(self, size: int) -> None:
        extra = size - len(self.item_of)
        self.item_of = np.concatenate([self.item_of, np.full(extra, -1, np.int64)])
        self.nb = np.concatenate([self.nb, np.full((extra, self.rules.width), PAD, np.int64)])
        self.w = np.concatenate([self.w, np.zeros((extra, self.rules.width), np.float32)])
        self.touched = np.concatenate([self.touched, np.zeros(extra, np.int64)])

    # --- reading --------------------------------------------------------------------------------

    def row(self, item: int) -> dict[int, float]:
        """One item's neighbours and their weights (for tests and inspection)."""
        slot = self.slot_of[item] if 0 <= item < len(self.slot_of) else -1
        if slot < 0:
            return {}
        kept = self.nb[slot] != PAD
        return dict(zip(self.nb[slot][kept].tolist(), self.w[slot][kept].tolist()))

    @property
    def items(self) -> int:
        """Items that have neighbour rows."""
        return int((self.item_of >= 0).sum())

    def popular(self, count: int) -> np.ndarray:
        """The ``count`` most clicked items, most first (ties: the lower index, i.e. the earlier item)."""
        if self._by_clicks is None or self._by_clicks[1] < count:
            self._by_clicks = (_most_clicked(self.pop, count), count)
        return self._by_clicks[0][:count]

    def candidates(self, recent: np.ndarray, now: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Neighbour candidates of each session: (row, item, score) triples, in no particular order.

        ``recent`` [B, R]: each session's last clicks, most recent last, PAD on
        the left; ``now`` [B]: the event time of each session's last click, or
        None for no recency boost (offline). The session's own items are not
        removed here.
        """
        r = self.rules
        last = recent[:, -r.reads :]
        g = 1.0 / (np.arange(last.shape[1] - 1, -1, -1) + 1.0)  # 1 for the most recent click
        rows, items, scores = self._spread(last, np.broadcast_to(g, last.shape))
        if r.hop2 and len(rows):
            best, rank = top_per_row(rows, items, scores, r.hop2)
            via = np.full((len(recent), r.hop2), PAD, np.int64)
            share = np.zeros((len(recent), r.hop2))
            via[rows[best], rank], share[rows[best], rank] = items[best], scores[best]
            totals = self._totals(via)
            rows2, items2, scores2 = self._spread(via, np.divide(r.hop2_weight * share, totals, out=np.zeros_like(share), where=totals > 0))
            span = max(len(self.slot_of), 1)
            fresh = ~member(rows2 * span + items2, rows * span + items)  # 2-hop adds only what 1-hop did not reach (1-hop's come sorted)
            rows, items, scores = np.concatenate([rows, rows2[fresh]]), np.concatenate([items, items2[fresh]]), np.concatenate([scores, scores2[fresh]])
        if now is not None and r.age_boost and len(rows):
            age = np.asarray(now, np.float64)[rows] - self.last[items]
            scores = scores * np.where(np.isnan(age), 1.0, 1.0 + r.age_boost * np.exp(-np.maximum(age, 0.0) / r.age_tau_s))
        return rows, items, scores

    def _spread(self, sources: np.ndarray, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sum over each row's sources of gain times the source's neighbour weights: (row, item, score), grouped by row."""
        slots = self._slots_of(sources)
        if not (slots >= 0).any():
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        # Each row's sources' neighbours side by side, [B, sources * width], sorted by item per row (PAD last): a row-wise
        # sort, not a sort of every (row, item) key. Stable, so an item's weights add up in the sources' order.
        row_of = np.maximum(slots, 0)  # -1 reads slot 0, masked to PAD
        nb = np.where((slots >= 0)[..., None], self.nb[row_of], PAD).reshape(len(slots), -1)
        w = (self.w[row_of] * np.asarray(gains, np.float64)[..., None]).reshape(len(slots), -1)
        order = np.argsort(np.where(nb == PAD, np.iinfo(np.int64).max, nb), axis=1, kind="stable")
        nb, w = np.take_along_axis(nb, order, 1), np.take_along_axis(w, order, 1)
        keep = nb != PAD
        rows, items, w = np.broadcast_to(np.arange(len(nb))[:, None], nb.shape)[keep], nb[keep], w[keep]
        first = np.ones(len(items), bool)
        first[1:] = (items[1:] != items[:-1]) | (rows[1:] != rows[:-1])
        starts = np.flatnonzero(first)
        return rows[starts], items[starts], np.add.reduceat(w, starts)

    def _totals(self, items: np.ndarray) -> np.ndarray:
        slots = self._slots_of(items)
        if not len(self.w):
            return np.zeros(items.shape)
        return np.where(slots >= 0, self.w[np.maximum(slots, 0)].sum(axis=-1), 0.0)

    def _slots_of(self, items: np.ndarray) -> np.ndarray:
        """The row slot of each item, -1 for PAD, unknown items and items without a row (no row is made)."""
        known = (items >= 0) & (items < len(self.slot_of))
        if not known.any():
            return np.full(items.shape, -1, np.int64)
        return np.where(known, self.slot_of[np.where(known, items, 0)], -1)

    # --- storage --------------------------------------------------------------------------------

    def tensors(self) -> dict[str, torch.Tensor]:
        """The learned rows and counts as tensors, for a safetensors file beside the network.

        Canonical: the same table gives the same bytes whatever its spare
        capacity, so a loaded checkpoint keeps its version (a hash of them).
        """
        used = np.flatnonzero(self.item_of >= 0)
        used = used[np.argsort(self.item_of[used])]
        counted = int(np.flatnonzero(self.pop).max(initial=-1)) + 1
        return {"neighbours.items": torch.from_numpy(self.item_of[used].copy()), "neighbours.nb": torch.from_numpy(self.nb[used].copy()),
                "neighbours.w": torch.from_numpy(self.w[used].copy()), "neighbours.pop": torch.from_numpy(self.pop[:counted].copy())}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], rules: NeighbourRules, max_items: int = 100_000) -> NeighbourTable:
        table = cls(rules, max_items)
        items, nb, w = (tensors[f"neighbours.{k}"].numpy() for k in ("items", "nb", "w"))
        if nb.shape[1:] != (rules.width,) or len(nb) != len(items) or w.shape != nb.shape:
            raise ValueError(f"neighbour rows of width {nb.shape[1:]} do not fit the rules' width {rules.width}")
        pop = tensors["neighbours.pop"].numpy()
        table._grow_items(max(len(pop), int(items.max()) + 1 if len(items) else 0))
        table.pop[: len(pop)] = pop
        keep = min(len(items), max_items)
        table._grow_slots(keep)
        table.item_of[:keep], table.nb[:keep], table.w[:keep] = items[:keep], nb[:keep], w[:keep]
        table.slot_of[items[:keep]] = np.arange(keep)
        return table


def learned_from(items: np.ndarray, offsets: np.ndarray, width: int) -> NeighbourTable:
    """A table of ``width`` neighbours per item learned from whole sessions (training data)."""
    table = NeighbourTable(NeighbourRules(width=width))
    learn_sessions(table, items, offsets)
    return table


def learn_sessions(table: NeighbourTable, items: np.ndarray, offsets: np.ndarray) -> None:
    """Learn whole sessions (items in click order, ``offsets`` as model.sessions.Sessions): every pair, no stream times."""
    window = table.rules.window
    position = np.arange(len(items)) - np.repeat(offsets[:-1], np.diff(offsets))
    history = np.full((len(items), window + 1), PAD, np.int64)
    for back in range(window + 1):  # column window - back holds the click `back` places before
        ok = position >= back
        history[ok, window - back] = items[np.flatnonzero(ok) - back]
    table.learn(increments(history, np.full(len(items), np.nan), window, first_only=False))


def _most_clicked(pop: np.ndarray, count: int) -> np.ndarray:
    """At least the ``count`` most clicked items (all that tie with the last), most first, ties by index.

    The stream learns a lesson about every micro-batch, so this runs about as
    often: only the items at or above the ``count``-th count are sorted, not
    every item ever clicked.
    """
    clicked = np.flatnonzero(pop > 0)
    if len(clicked) > count > 0:
        cut = len(clicked) - count
        clicked = clicked[pop[clicked] >= np.partition(pop[clicked], cut)[cut]]
    return clicked[np.lexsort((clicked, -pop[clicked]))]
