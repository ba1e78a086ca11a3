"""Honest baselines, scored by the same evaluator as GRU4Rec.

None of them keeps a hidden state; each scores items from training counts or
from the session's own history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from sessionrec.model.scoring import history_scores
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
