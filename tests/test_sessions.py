"""Session-parallel batching: every target once, in order, with resets at session starts."""

import numpy as np
import pytest
import torch

from model.config import PRESETS
from model.evaluate import rank_targets
from model.network import GRU4Rec, NetworkConfig
from model.scoring import GRU4RecScorer
from model.sessions import Sessions, session_parallel
from model.train import train
from model.vocab import Vocabulary
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
    return GRU4Rec(NetworkConfig(n_items, layers=[8], embedding=4))


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
