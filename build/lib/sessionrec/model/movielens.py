"""The MovieLens data: each user's ratings in time order, split leave-one-out.

A user is a session (``FORMATS["movielens"]``), so the same loader, trainer and
scorers serve; the model is ``PRESETS["movielens"]``, its baselines are in
model.baselines, the ranking in model.evaluate and the bench in model.bench. The split is leave-one-out by time: a user's last rating is the
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

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from sessionrec.model.data import ITEM, SESSION, data_dir, load_sessions
from sessionrec.model.errors import DataError
from sessionrec.model.formats import FORMATS
from sessionrec.model.sessions import Sessions
from sessionrec.model.vocab import Vocabulary

DATASET = "movielens-small"
RATING = "rating"
Stage = Literal["valid", "test"]
_PART = {"train": 0, "valid": 1, "test": 2}


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
