"""The two offline evaluation protocols on a train/test pair of click files.

``seed``: the course lab's protocol: every test click after a session's first
is a target, whatever its item. ``official``: GRU4Rec's own: test clicks on
items absent from the training file are dropped before sessions are formed.

In both, the evaluation vocabulary is the model's, extended by test items in
order of appearance, which is exactly what the live vocabulary does; items the
model has not learned can then be clicked and ranked, but never recommended
by the network itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sessionrec.model.config import PROTOCOLS
from sessionrec.model.data import ITEM, data_dir, data_source, load_sessions
from sessionrec.model.errors import DataError
from sessionrec.model.formats import FORMATS, Columns
from sessionrec.model.sessions import Sessions
from sessionrec.model.vocab import Vocabulary

MIN_SHARED_ITEMS = 0.01  # a checkpoint that knows fewer of the evaluated clicks' distinct items belongs to another catalogue


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    train_path: Path | None = None  # where the clicks came from, for reports and checkpoint metadata
    test_path: Path | None = None


def default_split_dir() -> Path:
    return data_dir() / "ecommerce"


def load_split(folder: str | Path | None = None, columns: Columns = FORMATS["ecommerce"]) -> Split:
    """``train_data.csv`` and ``test_data.csv`` of ``folder`` (default: the electronics shop's)."""
    if folder is None:
        folder = default_split_dir()
        if not folder.is_dir():
            raise DataError(f"no data folder at {folder} (the default: {data_source()}); pass --data FOLDER, or --train FILE --test FILE")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such data folder (expected train_data.csv and test_data.csv in it)")
    return load_pair(folder / "train_data.csv", folder / "test_data.csv", columns)


def load_pair(train: str | Path, test: str | Path, columns: Columns = FORMATS["ecommerce"]) -> Split:
    return Split(load_sessions(train, columns), load_sessions(test, columns), Path(train), Path(test))


@dataclass(frozen=True)
class SplitFiles:
    """Where a train/test pair lies, as ``--data FOLDER`` or ``--train FILE --test FILE`` name it; neither means the default folder."""

    folder: Path | None = None
    train: Path | None = None
    test: Path | None = None
    columns: Columns = FORMATS["ecommerce"]

    def __post_init__(self) -> None:
        if self.folder is not None and (self.train or self.test):
            raise DataError("give --data FOLDER or --train FILE --test FILE, not both")
        if (self.train is None) != (self.test is None):
            raise DataError("--train and --test go together: give both files, or --data FOLDER")

    def load(self) -> Split:
        if self.train is None or self.test is None:
            return load_split(self.folder, self.columns)
        return load_pair(self.train, self.test, self.columns)


def require_shared_catalogue(vocab: Vocabulary, items: pd.Series, model: str, clicks: str, advice: str) -> None:
    """Refuse to score a checkpoint on clicks of a catalogue it does not know: every figure would be (near) zero, silently."""
    distinct = pd.unique(items)
    known = sum(item in vocab for item in distinct)
    if known < MIN_SHARED_ITEMS * len(distinct):
        raise DataError(f"{model} knows {known:,} of the {len(distinct):,} items in {clicks} ({known / len(distinct):.1%}, "
                        f"below {MIN_SHARED_ITEMS:.0%}): it was trained on another catalogue; {advice}")


def training_vocab(kind: str, split: Split) -> Vocabulary:
    """Training items first; with ``train+test`` the test items follow, as in the course lab."""
    vocab = Vocabulary(split.train[ITEM])
    if kind == "train+test":
        vocab.encode(split.test[ITEM])
    return vocab


def evaluation_sessions(protocol: str, vocab: Vocabulary, split: Split, session_timeout: float = 0.0) -> tuple[Sessions, int]:
    """Test sessions under ``protocol`` and the size of the vocabulary they are ranked in."""
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    test = split.test
    if protocol == "official":
        test = test[test[ITEM].isin(set(split.train[ITEM]))].reset_index(drop=True)
    extended = vocab.copy()
    sessions = Sessions.from_frame(test, extended, session_timeout)
    return sessions, len(extended)
