"""Evaluation: pessimistic ranks, metrics, protocols, baselines on toy data."""

import numpy as np
import pytest
import torch

from sessionrec.model.baselines import ItemKNN, MostPopular, RepeatHistory
from sessionrec.model.evaluate import Metrics, pessimistic_rank, rank_targets
from sessionrec.model.protocol import Split, evaluation_sessions
from sessionrec.model.scoring import PAD, history_scores, push_history
from sessionrec.model.sessions import Sessions
from sessionrec.model.vocab import Vocabulary
from tests.toy import TOY, toy_frame


def test_ties_rank_the_target_last_among_equals():
    scores = torch.tensor([[1.0, 1.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0]])
    assert pessimistic_rank(scores, torch.tensor([0, 1])).tolist() == [3, 2]


def test_metrics_from_ranks():
    m = Metrics.from_ranks(np.array([1, 2, 6, 30]))
    assert m.accuracy_at_1 == 0.25 and m.recall_at_5 == 0.5 and m.recall_at_20 == 0.75
    assert m.mrr_at_20 == pytest.approx((1 + 0.5 + 1 / 6) / 4)


def test_history_push_and_recency_scores():
    h = torch.full((2, 3), PAD)
    h = push_history(h, torch.tensor([4, 1]), torch.tensor([True, True]))
    h = push_history(h, torch.tensor([2, 1]), torch.tensor([False, False]))
    h = push_history(h, torch.tensor([4, 3]), torch.tensor([False, True]))
    assert h.tolist() == [[4, 2, 4], [PAD, PAD, 3]]
    summed = history_scores(h, 5, decay=0.5)
    assert summed[0].tolist() == pytest.approx([0, 0, 0.5 / 1.75, 0, 1.25 / 1.75])
    latest = history_scores(h, 5, decay=0.5, reduce="amax")
    assert latest[0, 4] > latest[0, 2] > 0 and latest[1].tolist() == [0, 0, 0, 1, 0]


def test_repeat_baseline_ranks_by_last_click():
    vocab = Vocabulary()
    s = Sessions.from_frame(TOY, vocab)
    ranks = rank_targets(RepeatHistory(), s, len(vocab), batch_size=2)
    # b: 4->1 (miss); a: 1->2 (miss), 2->3 (miss), 3->2 (2nd most recent); c: 3->3 (hit), 3->5 (miss)
    assert sorted(ranks.ranks.tolist()) == sorted([len(vocab)] * 4 + [2, 1])
    assert ranks.repeat.sum() == 1
    report = ranks.report()
    assert report.overall.accuracy_at_1 == pytest.approx(1 / 6) and report.non_repeat.targets == 5


def test_popularity_and_item_knn_use_training_counts():
    train = toy_frame([("s1", "1", 0), ("s1", "2", 1), ("s2", "1", 0), ("s2", "2", 1), ("s3", "1", 0), ("s3", "3", 1)])
    vocab = Vocabulary()
    train_s = Sessions.from_frame(train, vocab)
    n = len(vocab)
    test = Sessions.from_frame(toy_frame([("t", "1", 0), ("t", "3", 1), ("t", "7", 2)]), vocab)
    pop = rank_targets(MostPopular(train_s, n), test, len(vocab)).ranks
    assert pop.tolist() == [3, len(vocab)]  # "3" is third most popular; "7" was never seen in training
    knn = rank_targets(ItemKNN(train_s, n, reg=0.0), test, len(vocab)).ranks
    assert knn.tolist() == [2, len(vocab)]  # after "1": "2" (2 sessions) beats "3" (1 session)


def test_official_protocol_drops_items_unseen_in_training():
    train = toy_frame([("s1", "1", 0), ("s1", "2", 1)])
    test = toy_frame([("t", "1", 0), ("t", "9", 1), ("t", "2", 2), ("u", "9", 0), ("u", "1", 1)])
    split = Split(train, test)
    vocab = Vocabulary(train.item_id)
    seed, n_seed = evaluation_sessions("seed", vocab, split)
    official, n_official = evaluation_sessions("official", vocab, split)
    assert (seed.n_targets, official.n_targets) == (3, 1)
    assert n_seed == 3 and n_official == 2 and len(vocab) == 2  # the model's vocabulary is not touched


def test_scorer_topk_matches_the_full_ranking_with_unknown_history_items():
    from sessionrec.model.config import NetworkConfig
    from sessionrec.model.network import GRU4Rec
    from sessionrec.model.scoring import GRU4RecScorer

    torch.manual_seed(3)
    net = GRU4Rec(NetworkConfig(layers=[5]), 6)
    n_items = 40  # the live vocabulary has grown past the 6 items the network knows
    history = torch.tensor([[PAD, 2, 30, 7, 30], [9, 9, 1, 39, 0], [PAD, PAD, PAD, PAD, 3]])
    state = torch.randn(3, 5)
    for weight in (0.0, 0.4):
        scorer = GRU4RecScorer(net, weight, 0.7)
        full = scorer.scores(state, history, n_items)
        items, values = scorer.topk(state, history, 5)
        expected_values, _ = full.topk(5, dim=1)
        assert torch.allclose(values, expected_values, atol=1e-6)
        assert torch.allclose(full.gather(1, items), values, atol=1e-6)  # each item really has that score
        assert all(len(set(row)) == 5 for row in items.tolist())
    assert 30 in items[0].tolist() and 39 in items[1].tolist()  # unknown items can be repeated


def test_ensemble_averages_the_members_log_probabilities_state_by_state():
    from sessionrec.model.config import NetworkConfig
    from sessionrec.model.network import GRU4Rec
    from sessionrec.model.scoring import EnsembleScorer, GRU4RecScorer

    torch.manual_seed(5)
    a, b = GRU4RecScorer(GRU4Rec(NetworkConfig(layers=[4]), 6)), GRU4RecScorer(GRU4Rec(NetworkConfig(layers=[3, 2]), 6))
    ensemble = EnsembleScorer([a, b])
    assert ensemble.state_size == 4 + 5
    clicks = torch.tensor([[1, 4], [0, 0], [5, 2]])  # three steps of two rows
    state, state_a, state_b = torch.zeros(2, 9), torch.zeros(2, 4), torch.zeros(2, 5)
    for items in clicks:
        state, state_a, state_b = ensemble.advance(state, items), a.advance(state_a, items), b.advance(state_b, items)
    history = clicks.T
    expected = (a.scores(state_a, history, 8).log_softmax(1) + b.scores(state_b, history, 8).log_softmax(1)) / 2
    got = ensemble.scores(state, history, 8)
    assert torch.allclose(got[:, :6], expected[:, :6], atol=1e-6)
    assert torch.isneginf(got[:, 6:]).all()  # items no member knows are never recommended
    # each member follows its own state: swapping the members' states changes the scores
    assert not torch.allclose(ensemble.scores(torch.cat([state_a.flip(0), state_b], 1), history, 8), got)
    with pytest.raises(ValueError):
        EnsembleScorer([])
