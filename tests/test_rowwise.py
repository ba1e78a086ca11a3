import numpy as np

from sessionrec.model.rowwise import member, top_per_row


def test_each_row_s_best_come_in_the_full_sort_s_order_ties_to_the_lower_item():
    """Against a three-key lexsort of every triple, on rows long and short, with many tied keys."""
    rng = np.random.default_rng(5)
    for count in (1, 3, 20):
        rows = rng.integers(0, 40, 3000)
        rows[rows == 7] = 8  # a row with no triples
        items = rng.permutation(3000)
        key = rng.integers(0, 6, 3000) / 4.0  # few distinct keys: ties at every cut
        order = np.lexsort((items, -key, rows))
        place = np.arange(len(order)) - np.searchsorted(rows[order], rows[order])
        chosen, places = top_per_row(rows, items, key, count)
        assert chosen.tolist() == order[place < count].tolist() and places.tolist() == place[place < count].tolist()


def test_rows_no_longer_than_the_count_keep_everything_in_order():
    chosen, places = top_per_row(np.array([1, 0, 1]), np.array([9, 4, 2]), np.array([0.5, 0.1, 0.5]), 5)
    assert chosen.tolist() == [1, 2, 0] and places.tolist() == [0, 0, 1]


def test_membership_in_a_sorted_set_is_isin():
    rng = np.random.default_rng(6)
    reference = np.unique(rng.integers(0, 500, 200))
    keys = rng.integers(-5, 510, 1000)
    assert np.array_equal(member(keys, reference), np.isin(keys, reference))
    assert not member(keys, reference[:0]).any()
