"""Session-parallel mini-batches (Hidasi et al. 2015, section 3.1.1).

Each batch row follows one session click by click; when a session runs out the
next session in line takes over the row and the row's state starts empty.
When no sessions are left the batch shrinks instead of padding, so every
target is seen exactly once in training and in evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from sessionrec.model.data import SESSION, TIME, fresh_starts
from sessionrec.model.vocab import Vocabulary


@dataclass(frozen=True)
class Sessions:
    """Clicks grouped by session as flat arrays."""

    items: np.ndarray  # int64 [clicks]: item index of each click, sessions contiguous
    offsets: np.ndarray  # int64 [sessions + 1]: where each session starts in ``items``
    fresh: np.ndarray  # bool [clicks]: the state is empty before this click (session start or long pause)
    order: np.ndarray  # int64 [sessions]: sessions by first click time, the order rows pick them up

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, vocab: Vocabulary, session_timeout: float | None = None) -> Sessions:
        """``frame`` must be sorted by session then time (``model.data.sort_sessions``)."""
        items = vocab.encode(frame["item_id"])
        starts = np.flatnonzero(~frame[SESSION].eq(frame[SESSION].shift()).to_numpy())
        offsets = np.append(starts, len(frame)).astype(np.int64)
        first_ts = frame[TIME].to_numpy()[starts]
        order = np.argsort(first_ts, kind="stable").astype(np.int64)
        return cls(items, offsets, fresh_starts(frame, session_timeout), order)

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_targets(self) -> int:
        return len(self.items) - self.n_sessions


def jitter_order(sessions: Sessions, window: float, rng: np.random.Generator) -> Sessions:
    """The clicks with each moved by up to ``window`` places, never past a fresh start.

    A data augmentation for data whose order within a few steps is noise, such
    as a user who rates a batch of movies at one sitting: each epoch sees
    another plausible order, and the network learns what comes *near* an item.
    """
    stretch = np.cumsum(sessions.fresh)
    key = np.arange(len(sessions.items)) + rng.uniform(0.0, window, len(sessions.items))
    return replace(sessions, items=sessions.items[np.lexsort((key, stretch))])


@dataclass(frozen=True)
class Step:
    """One click of every active row, and what the model must carry over."""

    inputs: torch.Tensor  # long [B]: the current click of each row
    targets: torch.Tensor  # long [B]: the next click, to be predicted
    fresh: torch.Tensor  # bool [B]: zero this row's state before reading ``inputs`` (a session's start, or a long pause)
    start: torch.Tensor  # bool [B]: ``inputs`` is its session's first click, so its history starts empty
    keep: torch.Tensor | None  # long [B]: rows of the previous step that continue here; None = all, same order


def session_parallel(sessions: Sessions, batch_size: int) -> Iterator[Step]:
    lengths = np.diff(sessions.offsets)
    queue = sessions.order[lengths[sessions.order] >= 2]  # a single click has nothing to predict
    rows = min(batch_size, len(queue))
    pos = sessions.offsets[queue[:rows]].copy()
    end = sessions.offsets[queue[:rows] + 1].copy()
    next_session = rows
    keep: torch.Tensor | None = None
    items, fresh = sessions.items, sessions.fresh
    first = np.zeros(len(items), dtype=bool)
    first[sessions.offsets[:-1]] = True
    while len(pos):
        yield Step(
            inputs=torch.from_numpy(items[pos]),
            targets=torch.from_numpy(items[pos + 1]),
            fresh=torch.from_numpy(fresh[pos]),
            start=torch.from_numpy(first[pos]),
            keep=keep,
        )
        pos += 1
        done = np.flatnonzero(pos + 1 >= end)
        keep = None
        if len(done) == 0:
            continue
        refill = done[: max(0, len(queue) - next_session)]
        taken = queue[next_session : next_session + len(refill)]
        next_session += len(refill)
        pos[refill] = sessions.offsets[taken]
        end[refill] = sessions.offsets[taken + 1]
        dropped = done[len(refill) :]
        if len(dropped):
            alive = np.setdiff1d(np.arange(len(pos)), dropped)
            pos, end = pos[alive], end[alive]
            keep = torch.from_numpy(alive)
