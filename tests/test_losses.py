"""Each loss against its textbook formula, computed the slow way on small tensors."""

import math

import pytest
import torch

from model.losses import LOSSES, bpr, bpr_max, cross_entropy, top1, top1_max


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


def test_bpr(batch):
    scores, positive, negative = batch
    expected = 0.0
    for i in range(3):
        ri = scores[i, positive[i]].item()
        negs = negatives_of(negative, i)
        expected += sum(-math.log(sigmoid(ri - scores[i, j].item())) for j in negs) / len(negs)
    assert bpr(scores, positive, negative).item() == pytest.approx(expected / 3, rel=1e-5)


def test_top1(batch):
    scores, positive, negative = batch
    expected = 0.0
    for i in range(3):
        ri = scores[i, positive[i]].item()
        negs = negatives_of(negative, i)
        expected += sum(sigmoid(scores[i, j].item() - ri) + sigmoid(scores[i, j].item() ** 2) for j in negs) / len(negs)
    assert top1(scores, positive, negative).item() == pytest.approx(expected / 3, rel=1e-5)


def softmax_over(values):
    m = max(values)
    e = [math.exp(v - m) for v in values]
    return [x / sum(e) for x in e]


@pytest.mark.parametrize("reg", [0.0, 0.5])
def test_bpr_max(batch, reg):
    scores, positive, negative = batch
    expected = 0.0
    for i in range(3):
        ri = scores[i, positive[i]].item()
        rj = [scores[i, j].item() for j in negatives_of(negative, i)]
        s = softmax_over(rj)
        expected += -math.log(sum(sj * sigmoid(ri - r) for sj, r in zip(s, rj))) + reg * sum(sj * r * r for sj, r in zip(s, rj))
    assert bpr_max(scores, positive, negative, reg=reg).item() == pytest.approx(expected / 3, rel=1e-5)


def test_top1_max(batch):
    scores, positive, negative = batch
    expected = 0.0
    for i in range(3):
        ri = scores[i, positive[i]].item()
        rj = [scores[i, j].item() for j in negatives_of(negative, i)]
        s = softmax_over(rj)
        expected += sum(sj * (sigmoid(r - ri) + sigmoid(r * r)) for sj, r in zip(s, rj))
    assert top1_max(scores, positive, negative).item() == pytest.approx(expected / 3, rel=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_better_positive_lowers_every_loss(batch, name):
    scores, positive, negative = batch
    better = scores.clone()
    better[torch.arange(3), positive] += 3.0
    assert LOSSES[name](better, positive, negative) < LOSSES[name](scores, positive, negative)
