"""GRU4Rec fused with item neighbours: the list a live shop can make for items no network has learned yet.

A list is built in tiers, each ordered by its own evidence:

3. the session's own items (its history, across pauses), ordered by GRU4Rec's
   blend (network and recency), as GRU4Rec best orders them;
2. neighbour candidates (model.neighbours) not in the session, ordered by
   their share of the row's strongest candidate plus the network's probability;
1. the most clicked items not listed above;
0. every other item, by the network's probability.

Offline (``scores``) and in the stream (``topk``) the same tiers come from the
same code, so a static table gives the same figures both ways. Only each
tier's first ``depth`` items are ranked by the tier (deeper ones fall to the
tiers below): HR@k and MRR@k for k up to ``depth`` are exact.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from sessionrec.model.config import ServingConfig
from sessionrec.model.neighbours import PAD, NeighbourTable
from sessionrec.model.network import GRU4Rec
from sessionrec.model.rowwise import member, top_per_row
from sessionrec.model.scoring import GRU4RecScorer, Scorer, clicked, history_weights

TIERS = {"history": 3.0, "neighbours": 2.0, "popular": 1.0}


class FusedScorer:
    def __init__(self, gru: GRU4RecScorer, table: NeighbourTable, *, depth: int = 20, network_weight: float = 1.0,
                 exclude_history: bool = False) -> None:
        self.gru = gru
        self.table = table
        self.depth = depth
        self.network_weight = network_weight  # of the network's probability next to a candidate's neighbour share
        self.exclude_history = exclude_history
        self.state_size = gru.state_size

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.gru.advance(state, items)

    @torch.no_grad()
    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int, now: np.ndarray | None = None) -> torch.Tensor:
        """[B, n_items]: tier + order inside the tier for listed items, the network's share of the blend for the rest."""
        network = _Network(self.gru, state)
        out = F.pad(network.dense(), (0, n_items - network.n_known))
        rows, items, values = self._tiers(network, history, now)
        inside = items < n_items
        out[torch.from_numpy(rows[inside]), torch.from_numpy(items[inside])] = torch.from_numpy(values[inside]).float()
        if self.exclude_history:
            out.masked_fill_(clicked(history.clamp(min=0), history != PAD, n_items), float("-inf"))
        return out

    @torch.no_grad()
    def topk(self, state: torch.Tensor, history: torch.Tensor, k: int, now: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The k best items of each row, best first, as ``scores`` would rank them, without a column per item."""
        network = _Network(self.gru, state)
        rows, items, values = self._tiers(network, history, now)
        b = len(history)
        short = np.flatnonzero(np.bincount(rows, minlength=b) < k)  # rows the tiers do not fill: the network's best fill them (tier 0)
        if len(short):
            rest_rows, rest_items, rest_values = network.best(short, k + history.size(1) + 3 * self.depth)
            span = int(max(network.n_known, items.max() + 1 if len(items) else 0, history.max().item() + 1))
            fresh = ~np.isin(rest_rows * span + rest_items, rows * span + items)
            if self.exclude_history:
                fresh &= ~np.isin(rest_rows * span + rest_items, _history_keys(history.cpu().numpy(), span))
            rows, items, values = (np.concatenate([a, r[fresh]]) for a, r in ((rows, rest_rows), (items, rest_items), (values, rest_values)))
        top, rank = top_per_row(rows, items, values, k)
        out_items = np.full((b, k), PAD, np.int64)
        out_values = np.full((b, k), -np.inf)
        out_items[rows[top], rank], out_values[rows[top], rank] = items[top], values[top]
        return torch.from_numpy(out_items), torch.from_numpy(out_values)

    def _tiers(self, network: _Network, history: torch.Tensor, now: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Listed items as (row, item, value) with value = tier + place inside the tier (in (0, 1), best highest)."""
        hist = history.cpu().numpy()
        b = len(hist)
        parts = []
        own_rows, own_items, own_key = self._history(hist, network, history)
        if not self.exclude_history:
            parts.append(_tier(own_rows, own_items, own_key, TIERS["history"], self.depth))
        span = max(network.n_known, int(hist.max()) + 1, len(self.table.slot_of))
        taken = own_rows * span + own_items  # ascending: the own items come sorted by row, then item
        rows, items, scores = self.table.candidates(hist, now)
        keep = ~member(rows * span + items, taken)
        rows, items, scores = rows[keep], items[keep], scores[keep]
        if len(rows):
            best = np.zeros(b)
            np.maximum.at(best, rows, scores)
            key = scores / best[rows] + self.network_weight * network.share(rows, items)
            neighbour = _tier(rows, items, key, TIERS["neighbours"], self.depth)
            parts.append(neighbour)
            taken = np.concatenate([taken, neighbour[0] * span + neighbour[1]])
        popular = self.table.popular(self.depth + hist.shape[1] + self.depth)
        if len(popular):
            parts.append(self._popular(popular, taken // span, taken % span, b))
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))

    def _popular(self, popular: np.ndarray, taken_rows: np.ndarray, taken_items: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The popular tier: each row's first ``depth`` of ``popular`` (most clicked first) not listed above; already in order, no sort."""
        by_item = np.argsort(popular)  # the popular items' places, found by binary search: no catalogue-sized lookup per batch
        at = np.minimum(np.searchsorted(popular, taken_items, sorter=by_item), len(popular) - 1)
        hit = popular[by_item[at]] == taken_items
        free = np.ones((b, len(popular)), bool)
        free[taken_rows[hit], by_item[at[hit]]] = False
        rank = np.cumsum(free, axis=1) - 1
        keep = free & (rank < self.depth)
        rows, column = np.nonzero(keep)
        return rows, popular[column], TIERS["popular"] + (self.depth - rank[rows, column]) / (self.depth + 1.0)

    def _history(self, hist: np.ndarray, network: _Network, history: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's distinct own items and their blend: the network's share plus the recency weights of their clicks."""
        weights = history_weights(history, self.gru.history_decay).cpu().numpy().astype(np.float64) * self.gru.history_weight
        b, length = hist.shape
        present = hist != PAD
        row = np.broadcast_to(np.arange(b)[:, None], hist.shape)[present]
        item = hist[present]
        span = max(int(hist.max()) + 1, 1)
        keys, inverse = np.unique(row * span + item, return_inverse=True)
        recency = np.bincount(inverse, weights=weights[present])
        last = np.zeros(len(keys))
        np.maximum.at(last, inverse, np.broadcast_to(np.arange(length, dtype=np.float64), hist.shape)[present])
        rows, items = keys // span, keys % span
        key = recency + network.share(rows, items) + last * 1e-9  # ties: the more recent click first
        return rows, items, key


class _Network:
    """The network's share of the blend, (1 - w) softmax, read only where needed.

    It keeps log-probabilities: log_softmax is one fused pass per row, where
    logsumexp and the subtraction its users then need cost 1.4-2x as much.
    """

    def __init__(self, gru: GRU4RecScorer, state: torch.Tensor) -> None:
        self.log_p = torch.log_softmax(gru.net.score(state[:, -gru.net.config.layers[-1] :]), dim=1)
        self.weight = 1.0 - gru.history_weight

    @property
    def n_known(self) -> int:
        return self.log_p.size(1)

    def dense(self) -> torch.Tensor:
        return self.log_p.exp().mul_(self.weight)

    def share(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The share of each (row, item); 0 for items the network does not know."""
        out = np.zeros(len(rows))
        inside = items < self.n_known
        flat = torch.from_numpy(rows[inside] * self.n_known + items[inside]).to(self.log_p.device)
        out[inside] = self.log_p.take(flat).exp_().mul_(self.weight).cpu().numpy()  # a flat take: a quarter of [r, i]'s time
        return out

    def best(self, rows: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``count`` best known items of the given rows, as (row, item, share) triples."""
        index = torch.from_numpy(rows).to(self.log_p.device)
        top, items = self.log_p[index].topk(min(count, self.n_known), dim=1)
        share = (torch.exp(top) * self.weight).cpu().numpy().astype(np.float64)
        return np.repeat(rows, items.size(1)), items.cpu().numpy().ravel(), share.ravel()


def _tier(rows: np.ndarray, items: np.ndarray, key: np.ndarray, tier: float, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``depth`` of each row by ``key`` (ties: lower item), valued ``tier`` + a share in (0, 1) that falls with the place."""
    chosen, place = top_per_row(rows, items, key, depth)
    return rows[chosen], items[chosen], tier + (depth - place) / (depth + 1.0)


def _history_keys(hist: np.ndarray, span: int) -> np.ndarray:
    present = hist != PAD
    return (np.broadcast_to(np.arange(len(hist))[:, None], hist.shape) * span + hist)[present]


def served_scorer(net: GRU4Rec, serving: ServingConfig, neighbours: NeighbourTable | None, depth: int = 20) -> Scorer:
    """The scorer a model is served with: its blend, fused with neighbours when its serving rules use them."""
    gru = GRU4RecScorer(net, serving.history_weight, serving.history_decay, serving.exclude_history)
    if serving.neighbours:
        if neighbours is None:
            raise ValueError("the serving rules fuse item neighbours, but the model carries none")
        return FusedScorer(gru, neighbours, depth=depth, exclude_history=serving.exclude_history)
    return gru
