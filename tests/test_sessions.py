"""Session-parallel batching: every target once, in order, with resets at session starts."""

import numpy as np
import pytest
import torch

from sessionrec.model.config import PRESETS, NetworkConfig
from sessionrec.model.evaluate import rank_targets
from sessionrec.model.network import GRU4Rec
from sessionrec.model.scoring import GRU4RecScorer
from sessionrec.model.sessions import Sessions, session_parallel
from sessionrec.model.train import train
from sessionrec.model.vocab import Vocabulary
from tests.toy import TOY, toy_frame


def test_sessions_from_frame_orders_by_first_click():
    s = Sessions.from_frame(TOY, Vocabulary())
    assert s.n_sessions == 4 and s.n_targets == 6
    assert list(s.order) == [3, 1, 0, 2]  # d (t=1), b (t=5), a (t=10), c (t=20)
    assert s.fresh.tolist() == [True, False, False, False, True, False, True, False, False, True]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 10])
def test_every_target_exactly_once(batch_size):
    vocab = Vocabulary()
    s = Sessions.from_frame(TOY, vocab)
    pairs = []
    for step in session_parallel(s, batch_size):
        pairs += list(zip(step.inputs.tolist(), step.targets.tolist(), step.fresh.tolist()))
        assert len(step.inputs) <= batch_size
    expected = []
    for sess in (TOY[TOY.session_id == k].item_id.tolist() for k in "bac"):
        idx = [vocab.index(i) for i in sess]
        expected += [(idx[t], idx[t + 1], t == 0) for t in range(len(idx) - 1)]
    assert sorted(pairs) == sorted(expected)


def test_timeout_makes_a_click_after_a_long_pause_fresh():
    frame = toy_frame([("a", "1", 0), ("a", "2", 100), ("a", "3", 5000), ("a", "4", 5001)])
    assert Sessions.from_frame(frame, Vocabulary(), session_timeout=1800).fresh.tolist() == [True, False, True, False]
    assert Sessions.from_frame(frame, Vocabulary()).fresh.tolist() == [True, False, False, False]


class RecordingScorer(GRU4RecScorer):
    """Records the state each row advances from."""

    def __init__(self, net):
        super().__init__(net)
        self.seen = []

    def advance(self, state, items):
        self.seen.append((items.clone(), state.clone()))
        return super().advance(state, items)


def toy_net(n_items: int) -> GRU4Rec:
    torch.manual_seed(1)
    return GRU4Rec(NetworkConfig(layers=[8], embedding=4), n_items)


def test_rows_start_each_session_from_an_empty_state():
    vocab = Vocabulary()
    s = Sessions.from_frame(TOY, vocab)
    scorer = RecordingScorer(toy_net(len(vocab)))
    rank_targets(scorer, s, len(vocab), batch_size=1)
    empty = [items.item() for items, state in scorer.seen if state.abs().sum() == 0]
    assert empty == [vocab.index("4"), vocab.index("1"), vocab.index("3")]  # b, a, c: each start, nothing else


def test_a_session_scores_the_same_alone_and_behind_others():
    """A state leaking from the previous session in the row would change these ranks."""
    vocab = Vocabulary()
    together = Sessions.from_frame(TOY, vocab)
    alone = Sessions.from_frame(TOY[TOY.session_id == "c"].reset_index(drop=True), vocab)
    net = toy_net(len(vocab))
    ranks_together = rank_targets(GRU4RecScorer(net), together, len(vocab), batch_size=1).ranks
    ranks_alone = rank_targets(GRU4RecScorer(net), alone, len(vocab), batch_size=1).ranks
    assert list(ranks_together[-2:]) == list(ranks_alone)  # c is picked up last


def test_leaking_state_would_change_the_result():
    """The same computation without the reset gives different scores: the check above has teeth."""
    vocab = Vocabulary()
    Sessions.from_frame(TOY, vocab)
    net = toy_net(len(vocab))
    x = torch.tensor([vocab.index("3")])
    fresh = net.step(x, net.init_hidden(1))[0]
    carried = net.step(x, net.step(torch.tensor([vocab.index("2")]), net.init_hidden(1))[1])[0]
    assert not torch.allclose(net.score(fresh), net.score(carried))


def test_training_resets_the_state_at_session_starts(monkeypatch):
    vocab = Vocabulary()
    s = Sessions.from_frame(TOY, vocab)
    net = toy_net(len(vocab))
    seen = []
    original = net.step

    def recording_step(items, hidden):
        seen.append(hidden.detach().clone())
        return original(items, hidden)

    monkeypatch.setattr(net, "step", recording_step)
    config = PRESETS["official"].updated(layers=[8], embedding=4, batch_size=2, n_sample=4, epochs=1)
    train(config, s, len(vocab), net=net, progress=False)
    rows_fresh = np.concatenate([step.fresh.numpy() for step in session_parallel(s, 2)])
    rows_zero = np.concatenate([(h.abs().sum(1) == 0).numpy() for h in seen])
    assert rows_zero.tolist() == rows_fresh.tolist()


def test_jitter_moves_clicks_only_a_few_places_and_never_past_a_fresh_start():
    from sessionrec.model.sessions import jitter_order

    n = 400
    fresh = np.zeros(n, dtype=bool)
    fresh[[0, 150, 151, 300]] = True
    s = Sessions(np.arange(n), np.array([0, 150, 300, n]), fresh, np.arange(3))
    moved = jitter_order(s, 3.0, np.random.default_rng(0))
    assert moved.items.tolist() != s.items.tolist()
    assert np.abs(moved.items - np.arange(n)).max() <= 3
    for start, end in [(0, 150), (151, 300), (300, n)]:  # 150 is a one-click stretch of state
        assert sorted(moved.items[start:end]) == list(range(start, end))
    assert jitter_order(s, 1.0, np.random.default_rng(0)).items.tolist() == s.items.tolist()  # under one place: no swap


def test_excluding_seen_items_hands_each_row_exactly_its_session_so_far(monkeypatch):
    from sessionrec.model import train as training

    # every item belongs to one session, so an input tells which session a row is in and how far
    frame = toy_frame([(s, f"{s}{i}", 10 * k + i) for k, (s, n) in enumerate([("a", 6), ("b", 2), ("c", 4), ("d", 5), ("e", 3)]) for i in range(n)])
    vocab = Vocabulary(frame.item_id)
    sessions = Sessions.from_frame(frame, vocab)
    ids = frame.item_id.tolist()
    prefix = {vocab.index(x): {vocab.index(y) for y in ids if y[0] == x[0] and int(y[1:]) <= int(x[1:])} for x in ids}
    calls = []
    real = training.Objective.__call__

    def recording(self, net, inputs, hidden, targets, seen=None):
        calls.append((inputs.tolist(), [set(row.nonzero().flatten().tolist()) for row in seen]))
        return real(self, net, inputs, hidden, targets, seen)

    monkeypatch.setattr(training.Objective, "__call__", recording)
    train(PRESETS["official"].updated(layers=[4], n_sample=3, batch_size=2, epochs=1, exclude_seen=True), sessions, len(vocab), progress=False)
    assert sum(len(inputs) for inputs, _ in calls) == sessions.n_targets
    assert all(seen == [prefix[i] for i in inputs] for inputs, seen in calls)


@pytest.mark.parametrize("logq", [0.0, 1.0])
def test_seen_items_are_no_negatives(logq):
    from sessionrec.model.losses import cross_entropy
    from sessionrec.model.network import GRU4Rec
    from sessionrec.model.train import Objective

    config = PRESETS["official"].updated(layers=[8], n_sample=4, logq=logq, sample_alpha=0.0)
    net = GRU4Rec(config.network, 10)
    objective = Objective(config, np.ones(10, dtype=np.int64), torch.Generator().manual_seed(0))
    objective.sampler.draw = lambda: torch.tensor([3, 7, 2, 9])
    inputs, targets, hidden = torch.tensor([2, 5]), torch.tensor([1, 4]), torch.randn(2, 8)
    seen = torch.zeros(2, 10, dtype=torch.bool)
    seen[0, [2, 7]] = True  # row 0 has had items 2 and 7: neither counts against its target
    masked, _ = objective(net, inputs, hidden, targets, seen)
    plain, _ = objective(net, inputs, hidden, targets)
    columns = torch.cat([targets, torch.tensor([3, 7, 2, 9])])
    scores, _ = net(inputs, hidden, columns)
    negative = (columns[None, :] != targets[:, None]) & ~seen[:, columns]
    assert torch.allclose(masked, cross_entropy(scores, torch.arange(2), negative), atol=1e-6)  # uniform samples: logQ is a constant shift
    assert masked < plain
