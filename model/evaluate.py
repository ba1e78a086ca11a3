"""Next-click evaluation: every click after a session's first is a target.

The state starts empty for each session, every item of the vocabulary is
ranked, and ties are counted pessimistically (the target ranks below every
item that scores the same), so a scorer cannot gain from giving many items
one score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from sessionrec.model.scoring import PAD, Scorer, push_history
from sessionrec.model.sessions import Sessions, session_parallel

CUTOFFS = (1, 5, 20)


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """Share of targets ranked in the top k (recall@k with one target per case)."""
    return float(np.mean(ranks <= k))


def mrr(ranks: np.ndarray, k: int) -> float:
    """Mean reciprocal rank, 0 for targets ranked below k."""
    return float(np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0)))


@dataclass(frozen=True)
class Metrics:
    accuracy_at_1: float
    recall_at_5: float
    recall_at_20: float
    mrr_at_20: float
    targets: int

    @classmethod
    def from_ranks(cls, ranks: np.ndarray) -> Metrics:
        if len(ranks) == 0:
            return cls(0.0, 0.0, 0.0, 0.0, 0)
        return cls(
            accuracy_at_1=hit_rate(ranks, 1),
            recall_at_5=hit_rate(ranks, 5),
            recall_at_20=hit_rate(ranks, 20),
            mrr_at_20=mrr(ranks, 20),
            targets=int(len(ranks)),
        )

    def to_dict(self) -> dict[str, float | int]:
        d = asdict(self)
        return {"accuracy@1": d["accuracy_at_1"], "recall@5": d["recall_at_5"], "recall@20": d["recall_at_20"], "mrr@20": d["mrr_at_20"], "targets": d["targets"]}


@dataclass(frozen=True)
class Report:
    overall: Metrics
    non_repeat: Metrics  # targets that differ from the current click

    def to_dict(self) -> dict:
        return {**self.overall.to_dict(), "non_repeat": self.non_repeat.to_dict()}


@dataclass(frozen=True)
class Ranks:
    ranks: np.ndarray  # int64 [targets]: 1-based pessimistic rank of each target
    repeat: np.ndarray  # bool [targets]: the target equals the click before it

    def report(self) -> Report:
        return Report(Metrics.from_ranks(self.ranks), Metrics.from_ranks(self.ranks[~self.repeat]))


def pessimistic_rank(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    target_scores = scores.gather(1, targets[:, None])
    return (scores >= target_scores).sum(1)


def rank_targets(scorer: Scorer, sessions: Sessions, n_items: int, *, batch_size: int = 256, history_len: int = 50, progress: bool = False) -> Ranks:
    """Rank every target of ``sessions`` among ``n_items`` items."""
    ranks, repeat = [], []
    state = torch.zeros(batch_size, scorer.state_size)
    history = torch.full((batch_size, history_len), PAD, dtype=torch.long)
    bar = tqdm(total=sessions.n_targets, desc="evaluate", unit="click", disable=not progress, leave=False)
    for step in session_parallel(sessions, batch_size):
        if step.keep is not None:
            state, history = state[step.keep], history[step.keep]
        state = state[: len(step.inputs)].masked_fill(step.fresh[:, None], 0.0)
        history = push_history(history[: len(step.inputs)], step.inputs, step.fresh)
        state = scorer.advance(state, step.inputs)
        scores = scorer.scores(state, history, n_items)
        ranks.append(pessimistic_rank(scores, step.targets).numpy())
        repeat.append((step.targets == step.inputs).numpy())
        bar.update(len(step.inputs))
    bar.close()
    if not ranks:
        return Ranks(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
    return Ranks(np.concatenate(ranks), np.concatenate(repeat))
