"""The MovieLens variant: leak-free leave-one-out split, evaluation, baselines, a short training."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from sessionrec.model.baselines import MostPopular, SequentialKNN
from sessionrec.model.bench import run_movielens_bench as run_bench
from sessionrec.model.config import PRESETS
from sessionrec.model.data import ITEM, SESSION, TIME, DataError
from sessionrec.model.evaluate import rank_after_history, ranking_metrics
from sessionrec.model.movielens import default_folder, leave_one_out, load_ratings, make_task, movie_titles, split_long
from sessionrec.model.report import movielens_table as bench_table
from sessionrec.model.sessions import Sessions

REAL = default_folder()
needs_data = pytest.mark.skipif(not (REAL / "ratings.csv").is_file(), reason="MovieLens data not available")


def sessions_of(*rows: list[int]) -> Sessions:
    """Hand-built sessions, item indices given directly, in the order written."""
    items = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
    offsets = np.append(0, np.cumsum([len(r) for r in rows])).astype(np.int64)
    fresh = np.zeros(len(items), dtype=bool)
    fresh[offsets[:-1]] = True
    return Sessions(items, offsets, fresh, np.arange(len(rows), dtype=np.int64))


class FixedScores:
    """A fake scorer: the same scores for everyone."""

    state_size = 0

    def __init__(self, scores: list[float]) -> None:
        self.fixed = torch.tensor(scores)

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return state

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        return self.fixed.expand(len(history), n_items)


class CountingScorer:
    """A fake stateful scorer: the state counts clicks read; the best item is that count."""

    state_size = 1

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return state + 1

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        return -((torch.arange(n_items)[None, :] - state) ** 2)


# --- loading and splitting -------------------------------------------------


@pytest.fixture
def tiny_folder(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "2,10,4.0,100\n"
        "1,10,5.0,50\n"
        "1,11,3.0,10\n"
        "2,12,2.0,300\n"
        "1,12,4.5,50\n"  # same second as movie 10: file order decides, so 12 is user 1's last
        "2,13,5.0,200\n"
        "3,10,4.0,1\n"
        "3,11,4.0,2\n"  # user 3 has two ratings only: dropped by the split
        "2,14,1.0,400\n"
    )
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n10,"Heat, the movie (1995)",Action\n11,Up (2009),Animation\n')
    return tmp_path


def test_tiny_split_has_known_parts(tiny_folder):
    split = leave_one_out(load_ratings(tiny_folder))
    assert split.n_users == 2
    by_user = {u: g for u, g in split.ratings.assign(part=split.part).groupby(SESSION)}
    assert by_user["1"][ITEM].tolist() == ["11", "10", "12"]  # time order, the tie in file order
    assert by_user["1"]["part"].tolist() == [0, 1, 2]
    assert by_user["2"][ITEM].tolist() == ["10", "13", "12", "14"]
    assert by_user["2"]["part"].tolist() == [0, 0, 1, 2]
    assert split.targets("test")[ITEM].tolist() == ["12", "14"]
    assert split.targets("valid")[ITEM].tolist() == ["10", "12"]
    assert split.history("valid")[ITEM].tolist() == ["11", "10", "13"]
    assert split.history("test")[ITEM].tolist() == ["11", "10", "10", "13", "12"]


def test_tiny_filter_and_titles(tiny_folder):
    liked = load_ratings(tiny_folder, min_rating=3.0)
    assert (liked["rating"] >= 3.0).all() and len(liked) == 7
    assert leave_one_out(liked).n_users == 1  # users 2 and 3 keep two ratings each: too few to split
    titles = movie_titles(tiny_folder)
    assert titles == {"10": "Heat, the movie (1995)", "11": "Up (2009)"}


def test_bad_rating_is_a_data_error(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,good,5\n")
    with pytest.raises(DataError, match="rating"):
        load_ratings(tmp_path)


def test_task_vocabulary_puts_learnable_items_first(tiny_folder):
    split = leave_one_out(load_ratings(tiny_folder))
    for stage, known in (("valid", {"11", "10", "13"}), ("test", {"11", "10", "13", "12"})):
        task = make_task(split, stage)
        assert task.n_known == len(known) and task.n_items == 5
        assert task.train.items.max() < task.n_known
        assert len(task.targets) == task.inputs.n_sessions == task.train.n_sessions == 2
        # with one target per user, the scorer reads exactly what the models learn from
        assert np.array_equal(task.inputs.items, task.train.items) and np.array_equal(task.inputs.offsets, task.train.offsets)


def test_several_validation_targets_each_read_their_own_past(tiny_folder):
    split = leave_one_out(load_ratings(tiny_folder), n_valid=2)
    assert split.n_users == 1  # only user 2 has a training rating before two validation ones
    assert split.targets("valid")[ITEM].tolist() == ["13", "12"]
    task = make_task(split, "valid")
    read_before = {i: task.inputs.items[task.inputs.offsets[k] : task.inputs.offsets[k + 1]].tolist() for k, i in enumerate(task.targets)}
    assert list(read_before.values()) == [[0], [0, 1]]  # 10 before 13; 10, 13 before 12
    assert task.train.items.tolist() == [0] and task.n_known == 1
    with pytest.raises(DataError):
        leave_one_out(load_ratings(tiny_folder), n_valid=0)


@needs_data
def test_real_split_leaks_nothing():
    split = leave_one_out(load_ratings())
    frame = split.ratings.assign(part=split.part)
    assert split.n_users == frame[SESSION].nunique() == 610
    assert (frame.groupby(SESSION)["part"].apply(lambda p: (p == 2).sum() == 1 and (p == 1).sum() == 1)).all()
    test_ts = frame[frame["part"] == 2].set_index(SESSION)[TIME]
    for stage in ("valid", "test"):
        before = split.history(stage)
        later = before[TIME].to_numpy() > test_ts.loc[before[SESSION]].to_numpy()
        assert not later.any(), f"{stage}: a training rating is later than the user's test rating"
        target_ts = split.targets(stage).set_index(SESSION)[TIME]
        assert not (before[TIME].to_numpy() > target_ts.loc[before[SESSION]].to_numpy()).any()
    # independently of the loader: the test item is each user's latest rating, ties in file order
    raw = pd.read_csv(REAL / "ratings.csv", dtype={"userId": str, "movieId": str})
    latest = raw.sort_values(["userId", "timestamp"], kind="stable").groupby("userId").tail(1).set_index("userId")["movieId"]
    test_items = split.targets("test").set_index(SESSION)[ITEM]
    assert test_items.sort_index().equals(latest.sort_index().rename(ITEM).rename_axis(SESSION))
    # what the models learn from holds no user's test rating, and the test task's histories are all the rest
    task = make_task(split, "test")
    assert len(task.train.items) == len(raw) - 610 and task.train.items.max() < task.n_known
    assert np.array_equal(task.inputs.items, task.train.items)
    assert set(zip(split.history("test")[SESSION], split.history("test")[ITEM])).isdisjoint(zip(test_items.index, test_items))


# --- training pieces ----------------------------------------------------------


def test_split_long_keeps_every_target_once():
    sessions = sessions_of(list(range(7)), [7, 8], [9])
    pieces = split_long(sessions, 3)
    rows = [pieces.items[a:b].tolist() for a, b in zip(pieces.offsets[:-1], pieces.offsets[1:])]
    assert rows == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [7, 8], [9]]
    assert pieces.fresh[pieces.offsets[:-1]].all() and pieces.fresh.sum() == 5
    assert pieces.n_targets == sessions.n_targets
    assert pieces.order.tolist() == [0, 3, 4, 1, 2]  # first pieces first
    with pytest.raises(DataError):
        split_long(sessions, 1)


# --- evaluation ------------------------------------------------------------------


def test_rated_movies_are_excluded_and_ties_pessimistic():
    scorer = FixedScores([5.0, 4.0, 4.0, 3.0, 2.0, 1.0])
    history = sessions_of([0], [3], [2, 0])
    ranks = rank_after_history(scorer, history, np.array([2, 2, 2]), 6)
    # user 1: movie 0 excluded, movie 1 ties with the target -> 2 (not 3, not 1)
    # user 2: nothing above excluded -> 0, 1 and the tie 2 -> 3
    # user 3: the target repeats an earlier rating and is still ranked, 0 excluded -> 2
    assert ranks.tolist() == [2, 3, 2]


def test_every_history_is_read_to_its_end():
    history = sessions_of([5, 5, 5], [1], [2, 2], [0, 0, 0, 0, 0])
    for batch_size in (1, 2, 64):
        ranks = rank_after_history(CountingScorer(), history, np.array([3, 1, 2, 5]), 8, batch_size=batch_size)
        assert ranks.tolist() == [1, 1, 1, 1]


def test_ranking_metrics_by_hand():
    m = ranking_metrics(np.array([1, 3, 15, 100]))
    assert m["hr@10"] == 0.5 and m["recall@20"] == 0.75 and m["users"] == 4
    assert m["ndcg@10"] == pytest.approx((1.0 + 1.0 / math.log2(4)) / 4)
    assert m["mrr@20"] == pytest.approx((1.0 + 1 / 3 + 1 / 15) / 4)
    assert ranking_metrics(np.array([]))["users"] == 0


# --- baselines ---------------------------------------------------------------------

TOY = sessions_of([0, 1, 2], [0, 1, 3], [4, 2])  # counts: 0:2 1:2 2:2 3:1 4:1; item 5 never trained


def test_most_popular_ranks():
    ranks = rank_after_history(MostPopular(TOY, 5), sessions_of([1], [0]), np.array([3, 5]), 6)
    # user 1: 1 excluded; 0 and 2 (2 each) above, 4 ties with 3 -> 4; user 2: unknown 5 ties with everything -> 5
    assert ranks.tolist() == [4, 5]


def test_sequential_knn_ranks():
    follows = SequentialKNN(TOY, 5, window=1, recency=1.0, pop_norm=0.0)
    ranks = rank_after_history(follows, sessions_of([0], [1], [1]), np.array([1, 3, 2]), 6)
    assert ranks.tolist() == [1, 2, 2]  # 0 -> 1 twice; after 1: 2 and 3 once each, a tie
    normalised = SequentialKNN(TOY, 5, window=1, recency=1.0, pop_norm=1.0)
    assert rank_after_history(normalised, sessions_of([1]), np.array([3]), 6).tolist() == [1]  # 3 is rarer than 2
    wider = SequentialKNN(TOY, 5, window=2, recency=1.0, pop_norm=0.0)
    assert rank_after_history(wider, sessions_of([0]), np.array([3]), 6).tolist() == [3]  # 1: 2, then 2 and 3: 1 each
    recent = SequentialKNN(TOY, 5, window=1, last=2, recency=0.25, pop_norm=0.0)
    # after [0, 4]: 4 -> 2 weighs 1, 0 -> 1 (twice) weighs 2 * 0.25
    assert rank_after_history(recent, sessions_of([0, 4], [0, 4]), np.array([2, 1]), 6).tolist() == [1, 2]
    only_last = SequentialKNN(TOY, 5, window=1, last=1, recency=1.0, pop_norm=0.0)
    assert rank_after_history(only_last, sessions_of([0, 4]), np.array([1]), 6).tolist() == [4]  # 0 is forgotten: 1 ties 2, 3, 5


# --- a short GRU4Rec run on the real data ----------------------------------------------


@needs_data
def test_short_bench_runs_on_real_data(tmp_path):
    from sessionrec.model import checkpoint
    MOVIELENS_CONFIG = PRESETS["movielens"]
    from sessionrec.model.scoring import GRU4RecScorer

    quick = MOVIELENS_CONFIG.updated(layers=[32], epochs=1, n_sample=128, batch_size=128)
    rows = run_bench(stage="valid", config=quick, members=2, progress=False, save=tmp_path / "model")
    assert [r["model"] for r in rows] == [
        "most popular", "sequential item-kNN (plain)", "sequential item-kNN (tuned)", "GRU4Rec", "GRU4Rec, 2 seeds averaged",
    ]
    for row in rows:
        assert row["users"] == 610
        for key in ("hr@10", "ndcg@10", "recall@20", "mrr@20"):
            assert math.isfinite(row[key]) and 0.0 <= row[key] <= 1.0
        assert row["ndcg@10"] <= row["hr@10"] <= row["recall@20"]
    table = bench_table(rows)
    assert "excluded" in str(table.title) and table.row_count == 5
    assert "3 ratings before the last" in str(bench_table(rows, "valid", 3).title)
    assert rows[3] != rows[4]  # the second seed changes the ranking
    # the saved checkpoint is the evaluated single network, with every movie in its vocabulary
    saved = checkpoint.load(tmp_path / "model")
    split = leave_one_out(load_ratings())
    task = make_task(split, "valid", saved.vocab)
    assert len(saved.vocab) == split.ratings[ITEM].nunique() and saved.net.n_items == task.n_known
    ranks = rank_after_history(GRU4RecScorer(saved.net), task.inputs, task.targets, task.n_items)
    assert ranking_metrics(ranks) == {k: v for k, v in rows[3].items() if k != "model"}


def test_ensemble_members_have_distinct_seeds_the_configured_one_first():
    from sessionrec.model.bench import member_seeds

    MOVIELENS_CONFIG = PRESETS["movielens"]

    assert member_seeds(MOVIELENS_CONFIG.updated(seed=42), 5) == [42, 1, 2, 3, 4]
    assert member_seeds(MOVIELENS_CONFIG.updated(seed=2), 4) == [2, 1, 3, 4]
    assert member_seeds(MOVIELENS_CONFIG, 1) == [MOVIELENS_CONFIG.seed]


def test_empty_split_and_empty_ensemble_are_refused(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4,5\n1,11,4,6\n")
    with pytest.raises(DataError, match="three ratings"):
        run_bench(tmp_path, progress=False)
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4,5\n1,11,4,6\n1,12,4,7\n")
    with pytest.raises(DataError, match="at least one member"):
        run_bench(tmp_path, members=0, progress=False)


def test_bench_command_prints_and_writes_the_same_rows(tiny_folder, tmp_path):
    import json

    from click.testing import CliRunner

    from sessionrec.stream.cli.main import main

    out = tmp_path / "bench.json"
    args = ["bench", "movielens", "--data", str(tiny_folder), "--members", "2", "--json", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows == json.loads(out.read_text())
    assert [r["model"] for r in rows][-2:] == ["GRU4Rec", "GRU4Rec, 2 seeds averaged"]
    assert all(r["users"] == 2 for r in rows)  # user 3 has too few ratings to split
    result = CliRunner().invoke(main, ["bench", "movielens", "--data", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "ratings.csv" in result.output and "Traceback" not in result.output
