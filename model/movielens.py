"""The MovieLens variant: GRU4Rec over each user's ratings in time order.

A user is a session (``FORMATS["movielens"]``), so the same loader, trainer and
scorers serve. The split is leave-one-out by time: a user's last rating is the
test target, the second-to-last the validation target, the rest the training
prefix. Models for the validation stage learn from the prefixes only; models
for the test stage learn from everything before the test target (prefix and
validation item), the usual leave-one-out practice. Nothing at or after a
user's test target ever reaches training.

Each target is ranked among all movies of ratings.csv (after the rating
filter), with the movies the user rated before it excluded, since nobody
recommends a movie already rated; ties count pessimistically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from rich.table import Table

from sessionrec.model import checkpoint
from sessionrec.model.baselines import MostPopular
from sessionrec.model.config import TrainConfig
from sessionrec.model.data import FORMATS, ITEM, SESSION, DataError, data_dir, load_sessions
from sessionrec.model.evaluate import hit_rate, mrr, pessimistic_rank
from sessionrec.model.scoring import PAD, EnsembleScorer, GRU4RecScorer, Scorer
from sessionrec.model.sessions import Sessions
from sessionrec.model.train import train
from sessionrec.model.vocab import Vocabulary

DATASET = "movielens-small"
RATING = "rating"
Stage = Literal["valid", "test"]
_PART = {"train": 0, "valid": 1, "test": 2}
TRAIN_PIECE_LEN = 200  # GRU4Rec trains on users' histories cut into pieces this long (``split_long``)
ENSEMBLE_MEMBERS = 5  # GRU4Rec networks averaged in the bench's ensemble row; chosen on validation (before the jitter)

# Chosen on the validation targets only (three ratings before the last per
# user; see the README): sampled cross-entropy with uniform negatives and logQ
# correction of the in-batch ones, shared embedding, strong hidden dropout;
# a user's earlier movies are no negatives (nobody rates a movie twice, and the
# ranking excludes them), and each epoch jitters the order of the ratings by up
# to 2.5 places, since a user rates batches of movies at one sitting in no
# meaningful order. The jitter is what made 20 epochs pay off.
MOVIELENS_CONFIG = TrainConfig(
    layers=[300], embedding=0, dropout_embed=0.2, dropout_hidden=0.6,
    loss="cross-entropy", n_sample=1024, sample_alpha=0.0, logq=1.0, exclude_seen=True,
    optimizer="adagrad", lr=0.1, batch_size=64, epochs=20, jitter=2.5,
)


def default_folder() -> Path:
    return data_dir() / DATASET


def load_ratings(folder: str | Path | None = None, min_rating: float | None = None) -> pd.DataFrame:
    """Every user's ratings sorted by user then time, equal timestamps in file order.

    ``min_rating`` keeps only ratings at or above it (liked movies), before the split.
    """
    frame = load_sessions(Path(folder or default_folder()) / "ratings.csv", FORMATS["movielens"], extra=(RATING,))
    rating = pd.to_numeric(frame[RATING], errors="coerce")
    if rating.isna().any():
        row = int(np.flatnonzero(rating.isna().to_numpy())[0])
        raise DataError(f"ratings.csv: column {RATING!r} is not a number ({frame[RATING].iloc[row]!r})")
    frame[RATING] = rating
    if min_rating is not None:
        frame = frame[frame[RATING] >= min_rating].reset_index(drop=True)
    return frame


def movie_titles(path: str | Path | None = None) -> dict[str, str]:
    """Title of each movie, keyed by movieId as text (the item ids of ``load_ratings``).

    ``path`` is movies.csv or the folder holding it.
    """
    path = Path(path or default_folder())
    if path.is_dir():
        path = path / "movies.csv"
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    movies = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"movieId", "title"} <= set(movies.columns):
        raise DataError(f"{path}: expected columns movieId and title")
    return dict(zip(movies["movieId"].str.strip(), movies["title"]))


@dataclass(frozen=True)
class LeaveOneOut:
    """Each user's ratings tagged as training prefix, validation or test target."""

    ratings: pd.DataFrame  # users with enough ratings, sorted by user then time (ties in file order)
    part: np.ndarray  # int8 per row: 0 prefix, 1 validation target(s) (just before the last), 2 test target (last)

    def history(self, stage: Stage) -> pd.DataFrame:
        """What the stage's models learn from: every rating before the stage's (first) target."""
        return self.ratings[self.part < _PART[stage]].reset_index(drop=True)

    def targets(self, stage: Stage) -> pd.DataFrame:
        """The stage's target rows, users in ``history``'s order, each user's in time order."""
        return self.ratings[self.part == _PART[stage]].reset_index(drop=True)

    @property
    def n_users(self) -> int:
        return int((self.part == _PART["test"]).sum())


def leave_one_out(ratings: pd.DataFrame, n_valid: int = 1) -> LeaveOneOut:
    """Split sorted ratings by position from each user's end.

    The last rating is the test target and the ``n_valid`` before it the
    validation targets. One validation target per user is the protocol; more
    make tuning less noisy with only a few hundred users. Users without a
    training rating before the validation targets are dropped.
    """
    if n_valid < 1:
        raise DataError("at least one validation rating per user is needed")
    sizes = ratings.groupby(SESSION, sort=False)[ITEM].transform("size").to_numpy()
    kept = ratings[sizes >= n_valid + 2].reset_index(drop=True)
    from_end = kept.groupby(SESSION, sort=False).cumcount(ascending=False).to_numpy()
    part = np.select([from_end == 0, from_end <= n_valid], [_PART["test"], _PART["valid"]], _PART["train"])
    return LeaveOneOut(kept, part.astype(np.int8))


@dataclass(frozen=True)
class Task:
    """One stage encoded: what models learn from, and each target with what precedes it."""

    train: Sessions  # one session per user: every rating before the stage's first target
    inputs: Sessions  # one session per target: the user's ratings before it, read by the scorer
    targets: np.ndarray  # int64 [targets]: the item to rank after each ``inputs`` session
    n_known: int  # items in ``train``: indices below this are what models can learn
    n_items: int  # every movie of the ratings: the ranking's candidates


def movie_vocabulary(split: LeaveOneOut) -> Vocabulary:
    """All movies, prefix items first, then validation, then test targets.

    Append-only order makes each stage's learnable items a leading block.
    """
    vocab = Vocabulary(split.history("valid")[ITEM])
    vocab.encode(split.targets("valid")[ITEM])
    vocab.encode(split.targets("test")[ITEM])
    return vocab


def _slices(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the ranges [start, end) laid end to end, and the ranges' offsets."""
    sizes = ends - starts
    offsets = np.append(0, np.cumsum(sizes)).astype(np.int64)
    return np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1]), offsets


def _sessions(items: np.ndarray, offsets: np.ndarray, order: np.ndarray) -> Sessions:
    fresh = np.zeros(len(items), dtype=bool)
    fresh[offsets[:-1]] = True
    return Sessions(items, offsets, fresh, order.astype(np.int64))


def make_task(split: LeaveOneOut, stage: Stage, vocab: Vocabulary | None = None) -> Task:
    vocab = vocab or movie_vocabulary(split)
    learn = split.history(stage)
    train = Sessions.from_frame(learn, vocab)
    items = vocab.encode(split.ratings[ITEM])
    rows = np.flatnonzero(split.part == _PART[stage])
    first = split.ratings.groupby(SESSION, sort=False).cumcount().to_numpy()
    index, offsets = _slices(rows - first[rows], rows)
    inputs = _sessions(items[index], offsets, np.arange(len(rows)))
    return Task(train, inputs, items[rows], int(learn[ITEM].nunique()), len(vocab))


def split_long(sessions: Sessions, max_len: int) -> Sessions:
    """Long sessions as consecutive pieces of at most ``max_len`` clicks, for training.

    Each piece starts with the previous one's last click, so every target is
    still trained on. One user with thousands of ratings would otherwise hold
    a batch row alone for thousands of steps after the others have run out;
    pieces keep the rows full. Pieces are queued first pieces first, then
    second pieces, each in the sessions' own order.
    """
    if max_len < 2:
        raise DataError("a training piece needs at least two clicks")
    lengths = np.diff(sessions.offsets)
    n_pieces = np.maximum(1, -(-(lengths - 1) // (max_len - 1)))
    session = np.repeat(np.arange(len(lengths)), n_pieces)
    piece = np.arange(len(session)) - np.repeat(np.cumsum(n_pieces) - n_pieces, n_pieces)
    starts = sessions.offsets[session] + piece * (max_len - 1)
    index, offsets = _slices(starts, np.minimum(starts + max_len, sessions.offsets[session + 1]))
    rank = np.empty_like(sessions.order)
    rank[sessions.order] = np.arange(len(rank))
    pieces = _sessions(sessions.items[index], offsets, np.lexsort((rank[session], piece)))
    return Sessions(pieces.items, pieces.offsets, pieces.fresh | sessions.fresh[index], pieces.order)


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


class SequentialKNN:
    """Movies rated close to the user's latest movies in the training sequences.

    ``near[i, j]`` counts how often j was rated within ``window`` steps after i
    (and, with ``symmetric``, before it), each pair weighted
    ``lag_decay ** (lag - 1)``. A user's score for j sums ``near[i, j]`` over
    their last ``last`` movies i, the latest weighted 1 and older ones
    ``recency ** age``; dividing by j's training count to the power
    ``pop_norm`` tempers the pull of blockbusters.
    """

    state_size = 0

    def __init__(self, train: Sessions, n_known: int, *, window: int = 5, last: int = 10, symmetric: bool = False,
                 lag_decay: float = 1.0, recency: float = 0.7, pop_norm: float = 0.2) -> None:
        session_of = np.repeat(np.arange(train.n_sessions), np.diff(train.offsets))
        pairs, weights = [], []
        for lag in range(1, window + 1):
            same = session_of[:-lag] == session_of[lag:]
            first, then = train.items[:-lag][same], train.items[lag:][same]
            pairs += [np.stack([then, first]), np.stack([first, then])] if symmetric else [np.stack([then, first])]
            weights += [np.full(int(same.sum()), lag_decay ** (lag - 1), dtype=np.float32)] * (2 if symmetric else 1)
        # stored transposed, [later item, earlier item], so that scoring is one sparse @ dense product
        self.near_t = torch.sparse_coo_tensor(
            torch.from_numpy(np.concatenate(pairs, axis=1)), torch.from_numpy(np.concatenate(weights)), (n_known, n_known), check_invariants=False
        ).coalesce()
        counts = torch.from_numpy(np.bincount(train.items, minlength=n_known).astype(np.float32))
        self.norm = counts.clamp(min=1.0) ** -pop_norm
        self.last, self.recency = last, recency

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return state

    def scores(self, state: torch.Tensor, history: torch.Tensor, n_items: int) -> torch.Tensor:
        recent = history[:, -self.last :]
        n_known = self.near_t.size(0)
        age = torch.arange(recent.size(1) - 1, -1, -1, dtype=torch.float32)
        rows, cols = ((recent != PAD) & (recent < n_known)).nonzero(as_tuple=True)
        weights = torch.zeros(n_known, len(recent)).index_put_((recent[rows, cols], rows), self.recency**age[cols], accumulate=True)
        known = torch.sparse.mm(self.near_t, weights).T * self.norm
        return torch.nn.functional.pad(known, (0, n_items - n_known))


def member_seeds(config: TrainConfig, members: int) -> list[int]:
    """The configuration's own seed first, so the first member is the single-network row; then 1, 2, ..."""
    return [config.seed, *[seed for seed in range(1, members + 1) if seed != config.seed][: members - 1]]


def stage_scorers(task: Task, config: TrainConfig = MOVIELENS_CONFIG, *, members: int = ENSEMBLE_MEMBERS,
                  progress: bool = False) -> Iterable[tuple[str, Scorer]]:
    """The models of the bench, each built from the task's histories only (lazily, so progress reads well).

    Plain kNN scores by the last 10 movies and co-occurrence within 5 steps,
    all weighted equally; tuned kNN weighs the latest movies more and tempers
    popularity (``recency``, ``pop_norm`` chosen on the validation targets).
    GRU4Rec is one network; with ``members`` > 1 the networks of that many
    seeds (the first one included) are averaged as one more row.
    """
    yield "most popular", MostPopular(task.train, task.n_known)
    yield "sequential item-kNN (plain)", SequentialKNN(task.train, task.n_known, recency=1.0, pop_norm=0.0)
    yield "sequential item-kNN (tuned)", SequentialKNN(task.train, task.n_known)
    pieces = split_long(task.train, TRAIN_PIECE_LEN)
    nets = []
    for number, seed in enumerate(member_seeds(config, members), start=1):
        label = f"GRU4Rec {number}/{members} " if members > 1 else "GRU4Rec "
        net, _ = train(config.updated(seed=seed), pieces, task.n_known, progress=progress, label=label)
        nets.append(net)
        if len(nets) == 1:
            yield "GRU4Rec", GRU4RecScorer(net)
    if members > 1:
        yield f"GRU4Rec, {members} seeds averaged", EnsembleScorer([GRU4RecScorer(net) for net in nets])


def evaluate_stage(split: LeaveOneOut, stage: Stage, config: TrainConfig = MOVIELENS_CONFIG, *, members: int = ENSEMBLE_MEMBERS,
                   progress: bool = False, save: str | Path | None = None) -> list[dict]:
    """One metrics row per model on the stage's targets: "valid" for tuning, "test" for the report.

    ``save`` writes the stage's GRU4Rec as a checkpoint the stream can serve
    (vocabulary: every movie; the ones it never learned are repeated from
    history only, as new items in the stream are): the single network, since
    the worker serves one.
    """
    vocab = movie_vocabulary(split)
    task = make_task(split, stage, vocab)
    rows = []
    for name, scorer in stage_scorers(task, config, members=members, progress=progress):
        ranks = rank_after_history(scorer, task.inputs, task.targets, task.n_items, history_len=config.history_len)
        rows.append({"model": name, **ranking_metrics(ranks)})
        if save is not None and name == "GRU4Rec":
            data = {"dataset": DATASET, "stage": stage, "ratings": len(task.train.items), "users": split.n_users}
            checkpoint.save(checkpoint.Checkpoint(scorer.net, config, vocab, data=data, metrics={"movielens": rows[-1]}), save)
    return rows


def run_bench(folder: str | Path | None = None, *, min_rating: float | None = None, progress: bool = True,
              stage: Stage = "test", config: TrainConfig = MOVIELENS_CONFIG, n_valid: int = 1,
              members: int = ENSEMBLE_MEMBERS, save: str | Path | None = None) -> list[dict]:
    """Load, split, train every model on what precedes the targets and rank the targets.

    ``users`` in a row counts the ranked targets: one per user, except for the
    validation stage with ``n_valid`` > 1.
    """
    split = leave_one_out(load_ratings(folder, min_rating), n_valid)
    if split.n_users == 0:
        raise DataError("no user has three ratings to split into history, validation and test")
    if members < 1:
        raise DataError("the GRU4Rec ensemble needs at least one member")
    return evaluate_stage(split, stage, config, members=members, progress=progress, save=save)


def bench_table(rows: Iterable[dict], stage: Stage = "test", n_valid: int = 1) -> Table:
    target = {"test": "last rating", "valid": "second-to-last rating" if n_valid == 1 else f"{n_valid} ratings before the last"}[stage]
    title = f"MovieLens leave-one-out, {target} per user; movies already rated are excluded from the ranking"
    table = Table(title=title)
    for name in ("model", "HR@10", "NDCG@10", "Recall@20", "MRR@20", "users"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for row in rows:
        table.add_row(row["model"], *(f"{row[k]:.4f}" for k in ("hr@10", "ndcg@10", "recall@20", "mrr@20")), f"{row['users']:,}")
    return table
