"""Each loss against its textbook formula, computed the slow way on small tensors."""

import math

import pytest
import torch

from sessionrec.model.losses import LOSSES, bpr, bpr_max, cross_entropy, top1, top1_max


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture
def batch():
    torch.manual_seed(0)
    scores = torch.randn(3, 6)
    positive = torch.tensor([0, 1, 2])
    columns = torch.tensor([10, 11, 10, 12, 13, 14])  # row 0 and row 2 share item 10: column 2 is not a negative of row 0
    targets = columns[:3]
    negative = columns[None, :] != targets[:, None]
    return scores, positive, negative


def negatives_of(negative, row):
    return [j for j in range(negative.size(1)) if negative[row, j]]


def test_negative_mask_excludes_the_rows_own_item(batch):
    _, _, negative = batch
    assert negatives_of(negative, 0) == [1, 3, 4, 5]
    assert negatives_of(negative, 1) == [0, 2, 3, 4, 5]


def test_cross_entropy(batch):
    scores, positive, negative = batch
    expected = 0.0
    for i in range(3):
        cols = [positive[i].item(), *negatives_of(negative, i)]
        logits = [scores[i, j].item() for j in cols]
        expected += -(logits[0] - math.log(sum(math.exp(v) for v in logits)))
    assert cross_entropy(scores, positive, negative).item() == pytest.approx(expected / 3, rel=1e-5)


def softmax_over(values):
    m = max(values)
    e = [math.exp(v - m) for v in values]
    return [x / sum(e) for x in e]


def bpr_max_row(ri, rj, reg):
    s = softmax_over(rj)
    return -math.log(sum(sj * sigmoid(ri - r) for sj, r in zip(s, rj))) + reg * sum(sj * r * r for sj, r in zip(s, rj))


ROW_LOSSES = {  # each loss and its value for one row, from the positive score ri and the negative scores rj
    "bpr": (bpr, lambda ri, rj: sum(-math.log(sigmoid(ri - r)) for r in rj) / len(rj)),
    "top1": (top1, lambda ri, rj: sum(sigmoid(r - ri) + sigmoid(r * r) for r in rj) / len(rj)),
    "bpr-max reg 0": (lambda *a: bpr_max(*a, reg=0.0), lambda ri, rj: bpr_max_row(ri, rj, 0.0)),
    "bpr-max reg 0.5": (lambda *a: bpr_max(*a, reg=0.5), lambda ri, rj: bpr_max_row(ri, rj, 0.5)),
    "top1-max": (top1_max, lambda ri, rj: sum(sj * (sigmoid(r - ri) + sigmoid(r * r)) for sj, r in zip(softmax_over(rj), rj))),
}


@pytest.mark.parametrize("name", ROW_LOSSES)
def test_ranking_losses_average_their_row_formula(batch, name):
    loss, row_loss = ROW_LOSSES[name]
    scores, positive, negative = batch
    expected = sum(row_loss(scores[i, positive[i]].item(), [scores[i, j].item() for j in negatives_of(negative, i)]) for i in range(3))
    assert loss(scores, positive, negative).item() == pytest.approx(expected / 3, rel=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_better_positive_lowers_every_loss(batch, name):
    scores, positive, negative = batch
    better = scores.clone()
    better[torch.arange(3), positive] += 3.0
    assert LOSSES[name](better, positive, negative) < LOSSES[name](scores, positive, negative)
