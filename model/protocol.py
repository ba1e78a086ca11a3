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


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    folder: Path


def default_split_dir() -> Path:
    return data_dir() / "ecommerce"


def load_split(folder: str | Path | None = None, columns: Columns = FORMATS["ecommerce"]) -> Split:
    if folder is None:
        folder = default_split_dir()
        if not folder.is_dir():
            raise DataError(f"no data folder at {folder} (the default: {data_source()}); pass --data FOLDER or set SESSIONREC_DATA")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such data folder (expected train_data.csv and test_data.csv in it)")
    return Split(load_sessions(folder / "train_data.csv", columns), load_sessions(folder / "test_data.csv", columns), folder)


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
