"""Next-click losses of GRU4Rec over a row of scores.

Every loss sees, for each row, the score of its positive column and a mask of
its negative columns; which columns exist (in-batch targets, shared popularity
samples, or all items) is the trainer's business. A negative column that holds
the row's own target item is masked out: it is not a negative.

Definitions: TOP1 and BPR from arXiv 1511.06939 (section 3.1.2); BPR-max and
TOP1-max, with the score regularisation of BPR-max, from arXiv 1706.03847
(section 4).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _positive(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    return scores.gather(1, positive[:, None])  # [B, 1]


def _negative_softmax(scores: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Softmax over each row's negatives only: the weights of the *-max losses."""
    return torch.softmax(scores.masked_fill(~negative, float("-inf")), dim=1)


def _mean_over_negatives(values: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    per_row = (values * negative).sum(1) / negative.sum(1).clamp(min=1)
    return per_row.mean()


def cross_entropy(scores: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """-log softmax of the positive among itself and the negatives."""
    keep = negative.clone()
    keep.scatter_(1, positive[:, None], True)
    return F.cross_entropy(scores.masked_fill(~keep, float("-inf")), positive)


def bpr(scores: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """-mean_j log sigmoid(r_i - r_j)."""
    return _mean_over_negatives(-F.logsigmoid(_positive(scores, positive) - scores), negative)


def top1(scores: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """mean_j sigmoid(r_j - r_i) + sigmoid(r_j^2)."""
    values = torch.sigmoid(scores - _positive(scores, positive)) + torch.sigmoid(scores**2)
    return _mean_over_negatives(values, negative)


def bpr_max(scores: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, reg: float = 1.0) -> torch.Tensor:
    """-log sum_j s_j sigmoid(r_i - r_j) + reg * sum_j s_j r_j^2, s = softmax over negatives."""
    weights = _negative_softmax(scores, negative)
    gain = (weights * torch.sigmoid(_positive(scores, positive) - scores)).sum(1)
    penalty = (weights * scores**2).sum(1)
    return (-torch.log(gain + 1e-24) + reg * penalty).mean()


def top1_max(scores: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """sum_j s_j (sigmoid(r_j - r_i) + sigmoid(r_j^2)), s = softmax over negatives."""
    weights = _negative_softmax(scores, negative)
    values = torch.sigmoid(scores - _positive(scores, positive)) + torch.sigmoid(scores**2)
    return (weights * values).sum(1).mean()


LOSSES: dict[str, Loss] = {
    "cross-entropy": cross_entropy,
    "bpr": bpr,
    "top1": top1,
    "bpr-max": bpr_max,
    "top1-max": top1_max,
}
