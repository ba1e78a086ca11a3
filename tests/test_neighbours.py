"""Item neighbours: learned click by click, bounded, read as candidates; the fused list built from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionrec.model.config import PRESETS
from sessionrec.model.fused import FusedScorer
from sessionrec.model.neighbours import PAD, Increments, NeighbourRules, NeighbourTable, increments, learn_sessions
from sessionrec.model.network import GRU4Rec
from sessionrec.model.scoring import GRU4RecScorer


def history(*rows: list[int], length: int = 6) -> np.ndarray:
    out = np.full((len(rows), length), PAD, np.int64)
    for r, items in enumerate(rows):
        out[r, length - len(items) :] = items
    return out


def test_a_click_pairs_with_the_last_clicks_before_it_by_recency():
    inc = increments(history([1, 2, 3, 4]), np.array([5.0]), window=2)
    pairs = {(int(a), int(b)): float(w) for a, b, w in zip(inc.rows, inc.cols, inc.weights)}
    assert pairs == {(3, 4): 1.0, (4, 3): 1.0, (2, 4): 0.5, (4, 2): 0.5}  # 1 is outside the window
    assert inc.clicked.tolist() == [4] and inc.ts.tolist() == [5.0]


def test_only_a_session_s_first_click_on_an_item_teaches_pairs():
    repeat = increments(history([7, 1, 7]), np.array([0.0]), window=5)
    assert len(repeat.rows) == 0 and repeat.clicked.tolist() == [7]  # still counts as a click
    assert len(increments(history([7, 1, 7]), np.array([0.0]), window=5, first_only=False).rows) == 2


def test_learning_adds_up_and_the_weakest_neighbour_gives_way():
    table = NeighbourTable(NeighbourRules(width=2))
    for row, col, w in ((1, 2, 1.0), (1, 3, 0.5), (1, 2, 1.0), (1, 4, 0.8)):
        table.learn(Increments(np.array([row]), np.array([col]), np.array([w], np.float32), np.zeros(0, np.int64), np.zeros(0)))
    assert table.row(1) == pytest.approx({2: 2.0, 4: 0.8})  # 3 (0.5) was the weakest when 4 came


def test_many_new_neighbours_of_a_row_in_one_lesson_go_in_one_by_one():
    """One lesson of new pairs leaves the rows that learning them one lesson each (in the lesson's order) would."""
    rng = np.random.default_rng(4)
    rows, cols = np.repeat(np.arange(6), 5), rng.integers(10, 40, 30) * 10 + np.tile(np.arange(5), 6)  # distinct pairs
    weights = rng.integers(1, 9, 30).astype(np.float32) / 4  # ties among the weights too

    def table_with_old_rows() -> NeighbourTable:
        table = NeighbourTable(NeighbourRules(width=3))
        table.learn(Increments(np.repeat(np.arange(6), 2), np.tile([1, 2], 6), np.tile(np.float32([1.0, 0.5]), 6), np.zeros(0, np.int64), np.zeros(0)))
        return table

    at_once, one_by_one = table_with_old_rows(), table_with_old_rows()
    at_once.learn(Increments(rows, cols, weights, np.zeros(0, np.int64), np.zeros(0)))
    for i in np.lexsort((cols, rows)):
        one_by_one.learn(Increments(rows[i : i + 1], cols[i : i + 1], weights[i : i + 1], np.zeros(0, np.int64), np.zeros(0)))
    assert all(at_once.row(r) == one_by_one.row(r) for r in range(6))


def test_memory_is_bounded_by_the_settings():
    table = NeighbourTable(NeighbourRules(width=3), max_items=10)
    rng = np.random.default_rng(0)
    for _ in range(50):
        rows, cols = rng.integers(0, 1000, 200), rng.integers(0, 1000, 200)
        table.learn(Increments(rows, cols, np.ones(200, np.float32), rows, np.full(200, 1.0)))
    assert table.items == 10 and len(table.item_of) == 10 and table.nb.shape == (10, 3)
    assert all(len(table.row(int(i))) <= 3 for i in table.item_of)


def test_candidates_reach_neighbours_and_their_neighbours_and_favour_recent_clicks():
    table = NeighbourTable(NeighbourRules(width=10, reads=2, hop2=1, hop2_weight=0.1, age_boost=3.0, age_tau_s=100.0))
    learn_sessions(table, np.array([1, 2, 2, 3, 1, 5]), np.array([0, 2, 4, 6]))  # 1-2, 2-3, 1-5
    rows, items, scores = table.candidates(history([9, 1]), None)
    got = dict(zip(items.tolist(), scores.tolist()))
    assert got[2] == got[5] == 1.0 and 0 < got[3] < 0.1  # 3 only through 2, a neighbour of a neighbour
    assert set(got) == {1, 2, 3, 5}  # 1 comes back through 2 and 5: the session's own items are the fused list's to drop
    table.learn(Increments(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), np.array([5]), np.array([1000.0])))
    _, items, scores = table.candidates(history([9, 1]), np.array([1000.0]))
    assert items[np.argmax(scores)] == 5 and scores.max() > 3.9  # clicked in the stream just now: boosted


def test_lessons_travel_as_bytes_and_damaged_ones_are_refused():
    inc = increments(history([1, 2, 3], [4, 5]), np.array([1.5, 2.5]), window=5)
    back = Increments.from_bytes(inc.to_bytes())
    for name in ("rows", "cols", "weights", "clicked", "ts"):
        assert np.array_equal(getattr(back, name), getattr(inc, name))
    try:
        Increments.from_bytes(inc.to_bytes()[:-3])
    except ValueError as exc:
        assert "does not hold" in str(exc)
    else:
        raise AssertionError("a truncated lesson was read")


def test_table_round_trips_through_tensors():
    table = NeighbourTable(NeighbourRules(width=4))
    learn_sessions(table, np.array([1, 2, 3, 2, 4]), np.array([0, 3, 5]))
    back = NeighbourTable.from_tensors(table.tensors(), table.rules)
    assert all(back.row(i) == table.row(i) for i in range(6)) and np.array_equal(back.pop[:6], table.pop[:6])


def _fused(table: NeighbourTable, n_known: int = 8) -> FusedScorer:
    torch.manual_seed(0)
    config = PRESETS["best"].updated(layers=[6])
    return FusedScorer(GRU4RecScorer(GRU4Rec(config.network, n_known), 0.5, 0.8), table, depth=5)


def test_fused_list_puts_the_session_first_then_neighbours_then_popular_items():
    table = NeighbourTable(NeighbourRules(width=10))
    learn_sessions(table, np.array([3, 20, 3, 21, 9, 9, 9, 9]), np.array([0, 2, 4, 8]))  # 20, 21 (new to the network) near 3; 9 popular
    scorer = _fused(table)
    hist = torch.from_numpy(history([1, 3]))
    state = scorer.advance(torch.zeros(1, scorer.state_size), torch.tensor([3]))
    items, _ = scorer.topk(state, hist, 5)
    assert items[0, :2].tolist() in ([3, 1], [1, 3]) and set(items[0, 2:4].tolist()) == {20, 21} and items[0, 4] == 9
    dense = scorer.scores(state, hist, 30)
    assert dense.topk(5).indices[0].tolist() == items[0].tolist()  # offline and online rank alike


def test_excluding_the_session_s_items_removes_them_from_every_tier():
    table = NeighbourTable(NeighbourRules(width=10))
    learn_sessions(table, np.array([3, 1, 3, 20]), np.array([0, 2, 4]))
    scorer = _fused(table)
    scorer.exclude_history = True
    hist = torch.from_numpy(history([1, 3]))
    state = scorer.advance(torch.zeros(1, scorer.state_size), torch.tensor([3]))
    items, _ = scorer.topk(state, hist, 5)
    assert not {1, 3} & set(items[0].tolist()) and items[0, 0] == 20
    assert torch.isinf(scorer.scores(state, hist, 30)[0, [1, 3]]).all()


def test_online_lists_are_the_offline_ranking_on_random_sessions():
    """topk (the stream's lists, built tier by tier without a column per item) ranks as the dense scores (offline) do."""
    rng = np.random.default_rng(3)
    table = NeighbourTable(NeighbourRules(width=10))
    sessions = rng.integers(0, 40, 400)  # items 0-39; the network knows 0-24, the rest only the neighbours and popularity know
    learn_sessions(table, sessions, np.arange(0, 401, 4))
    scorer = _fused(table, n_known=25)
    hist = torch.from_numpy(history(*(rng.integers(0, 45, rng.integers(1, 8)).tolist() for _ in range(64)), length=8))
    state = scorer.advance(torch.randn(64, scorer.state_size) * 0.3, hist[:, -1].clamp(max=24))
    items, _ = scorer.topk(state, hist, 12)
    assert torch.equal(scorer.scores(state, hist, 45).topk(12).indices, items)


def test_popular_items_are_the_most_clicked_first_and_ties_go_to_the_earlier_item():
    """Lessons between asks, and counts asked for larger and smaller, against a full sort of every clicked item."""
    rng = np.random.default_rng(3)
    table = NeighbourTable(NeighbourRules())
    for _ in range(20):
        clicked = rng.integers(0, 300, rng.integers(1, 40))
        table.learn(Increments(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), clicked, np.full(len(clicked), np.nan)))
        every = np.flatnonzero(table.pop > 0)
        expected = every[np.lexsort((every, -table.pop[every]))]
        for count in (5, 60, 400, 5):  # a larger count is worked out again; a cached answer serves a smaller one
            assert table.popular(count).tolist() == expected[:count].tolist()
