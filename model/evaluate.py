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

from sessionrec.model.config import ServingConfig
from sessionrec.model.fused import served_scorer
from sessionrec.model.neighbours import NeighbourTable
from sessionrec.model.network import GRU4Rec
from sessionrec.model.scoring import PAD, Scorer, push_history
from sessionrec.model.sessions import Sessions, session_parallel


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
        return {"accuracy@1": d["accuracy_at_1"], "recall@5": d["recall_at_5"], "recall@20": d["recall_at_20"], "mrr@20": d["mrr_at_20"],
                "targets": d["targets"]}


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
        history = push_history(history[: len(step.inputs)], step.inputs, step.start)
        state = scorer.advance(state, step.inputs)
        scores = scorer.scores(state, history, n_items)
        ranks.append(pessimistic_rank(scores, step.targets).numpy())
        repeat.append((step.targets == step.inputs).numpy())
        bar.update(len(step.inputs))
    bar.close()
    if not ranks:
        return Ranks(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
    return Ranks(np.concatenate(ranks), np.concatenate(repeat))


def served_report(net: GRU4Rec, serving: ServingConfig, sessions: Sessions, n_items: int, *, neighbours: NeighbourTable | None = None,
                  progress: bool = False) -> Report:
    """``net`` ranked as the stream serves it (its blend, and its neighbours if it has them), on every target of ``sessions``."""
    scorer = served_scorer(net, serving, neighbours)
    return rank_targets(scorer, sessions, n_items, history_len=serving.history_len, progress=progress).report()


# --- ranking after a whole history (leave-one-out, as for MovieLens) --------------------------------


def _padded(sessions: Sessions, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Items of the given sessions left-aligned in a [rows, longest] matrix, PAD after the end."""
    starts, lengths = sessions.offsets[rows], np.diff(sessions.offsets)[rows]
    width = int(lengths.max())
    position = np.arange(width)[None, :]
    inside = position < lengths[:, None]
    items = np.where(inside, sessions.items[np.minimum(starts[:, None] + position, len(sessions.items) - 1)], PAD)
    return torch.from_numpy(items), torch.from_numpy(lengths)


def _last_items(items: torch.Tensor, lengths: torch.Tensor, count: int) -> torch.Tensor:
    """The last ``count`` items of each row, most recent last, PAD-filled on the left."""
    column = lengths[:, None] - count + torch.arange(count)[None, :]
    return torch.where(column >= 0, items.gather(1, column.clamp(min=0)), PAD)


def rank_after_history(scorer: Scorer, history: Sessions, targets: np.ndarray, n_items: int, *, history_len: int = 50, batch_size: int = 1024) -> np.ndarray:
    """Pessimistic rank of each session's target after reading the whole session.

    Sessions are read in batches of similar length, a shrinking prefix of the
    batch per step, so a batch costs only its clicks. Items the session holds
    are excluded from the ranking (-inf), the target itself never.
    """
    lengths = np.diff(history.offsets)
    by_length = np.argsort(-lengths, kind="stable")
    ranks = np.zeros(len(lengths), dtype=np.int64)
    for chunk in np.array_split(by_length, max(1, -(-len(by_length) // batch_size))):
        items, length = _padded(history, chunk)
        active = (length[None, :] > torch.arange(items.size(1))[:, None]).sum(1).tolist()  # rows still reading, per step
        state = torch.zeros(len(chunk), scorer.state_size)
        for step, rows in enumerate(active):
            if scorer.state_size:
                state[:rows] = scorer.advance(state[:rows], items[:rows, step])
        scores = scorer.scores(state, _last_items(items, length, history_len), n_items)
        target = torch.from_numpy(targets[chunk])
        seen = torch.zeros(len(chunk), n_items + 1, dtype=torch.bool).scatter_(1, items.masked_fill(items == PAD, n_items), True)[:, :n_items]
        seen[torch.arange(len(chunk)), target] = False
        ranks[chunk] = pessimistic_rank(scores.masked_fill(seen, float("-inf")), target).numpy()
    return ranks


def ranking_metrics(ranks: np.ndarray) -> dict[str, float | int]:
    """HR@10 (= Recall@10 with one target per user), NDCG@10, Recall@20, MRR@20."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        return {"hr@10": 0.0, "ndcg@10": 0.0, "recall@20": 0.0, "mrr@20": 0.0, "users": 0}
    return {
        "hr@10": hit_rate(ranks, 10),
        "ndcg@10": float(np.mean(np.where(ranks <= 10, 1.0 / np.log2(ranks + 1.0), 0.0))),
        "recall@20": hit_rate(ranks, 20),
        "mrr@20": mrr(ranks, 20),
        "users": len(ranks),
    }
