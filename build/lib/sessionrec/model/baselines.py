"""Honest baselines, scored by the same evaluators as GRU4Rec.

None of them keeps a hidden state; each scores items from training counts or
from the session's own history. SequentialKNN is the MovieLens neighbour model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from sessionrec.model.scoring import PAD, history_scores
from sessionrec.model.sessions import Sessions


class _Stateless:
    state_size = 0

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return state


class MostPopular(_Stateless):
    """The training data's most clicked items, the same for everyone."""

    def __init__(self, train: Sessions, n_known: int) -> None:
        self.counts = torch.from_numpy(np.bincount(train.items, minlength=n_known).astype(np.float32))

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        return F.pad(self.counts, (0, n_items - len(self.counts))).expand(history.size(0), -1)


class RepeatHistory(_Stateless):
    """The current item, then the rest of the session's history, most recent first."""

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        return history_scores(history, n_items, decay=0.5, reduce="amax")


class ItemKNN(_Stateless):
    """Items that share training sessions with the current one (cosine similarity).

    The item-kNN baseline of arXiv 1511.06939: sim(i, j) = sessions with both /
    sqrt((sessions with i + reg) * (sessions with j + reg)).
    """

    def __init__(self, train: Sessions, n_known: int, reg: float = 20.0) -> None:
        session_of = np.repeat(np.arange(train.n_sessions), np.diff(train.offsets))
        pairs = pd.DataFrame({"s": session_of, "i": train.items}).drop_duplicates()
        both = pairs.merge(pairs, on="s")  # every (i, j) that share a session, once per session
        flat = both["i_x"].to_numpy() * n_known + both["i_y"].to_numpy()
        co = torch.from_numpy(np.bincount(flat, minlength=n_known * n_known).astype(np.float32)).view(n_known, n_known)
        support = co.diagonal().clone()
        co.fill_diagonal_(0.0)
        self.similarity = co / torch.sqrt((support[:, None] + reg) * (support[None, :] + reg))

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        current = history[:, -1]
        known = current < self.similarity.size(0)
        rows = self.similarity[current.clamp(max=self.similarity.size(0) - 1)] * known[:, None]
        return F.pad(rows, (0, n_items - rows.size(1)))


class SequentialKNN:
    """Movies rated close to the user's latest movies in the training sequences.

    ``near[i, j]`` counts how often j was rated within ``window`` steps after i
    (and, with ``symmetric``, before it), each pair weighted
    ``lag_decay ** (lag - 1)``. A user's score for j sums ``near[i, j]`` over
    their last ``last`` movies i, the latest weighted 1 and older ones
    ``recency ** age``; dividing by j's training count to the power
    ``pop_norm`` tempers the pull of blockbusters.
    """

    state_size = 0

    def __init__(self, train: Sessions, n_known: int, *, window: int = 5, last: int = 10, symmetric: bool = False,
                 lag_decay: float = 1.0, recency: float = 0.7, pop_norm: float = 0.2) -> None:
        session_of = np.repeat(np.arange(train.n_sessions), np.diff(train.offsets))
        pairs, weights = [], []
        for lag in range(1, window + 1):
            same = session_of[:-lag] == session_of[lag:]
            first, then = train.items[:-lag][same], train.items[lag:][same]
            pairs += [np.stack([then, first]), np.stack([first, then])] if symmetric else [np.stack([then, first])]
            weights += [np.full(int(same.sum()), lag_decay ** (lag - 1), dtype=np.float32)] * (2 if symmetric else 1)
        # stored transposed, [later item, earlier item], so that scoring is one sparse @ dense product
        self.near_t = torch.sparse_coo_tensor(
            torch.from_numpy(np.concatenate(pairs, axis=1)), torch.from_numpy(np.concatenate(weights)), (n_known, n_known), check_invariants=False
        ).coalesce()
        counts = torch.from_numpy(np.bincount(train.items, minlength=n_known).astype(np.float32))
        self.norm = counts.clamp(min=1.0) ** -pop_norm
        self.last, self.recency = last, recency

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return state

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        recent = history[:, -self.last :]
        n_known = self.near_t.size(0)
        age = torch.arange(recent.size(1) - 1, -1, -1, dtype=torch.float32)
        rows, cols = ((recent != PAD) & (recent < n_known)).nonzero(as_tuple=True)
        weights = torch.zeros(n_known, len(recent)).index_put_((recent[rows, cols], rows), self.recency**age[cols], accumulate=True)
        known = torch.sparse.mm(self.near_t, weights).T * self.norm
        return torch.nn.functional.pad(known, (0, n_items - n_known))
