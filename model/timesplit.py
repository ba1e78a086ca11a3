"""One click file into a train/test pair by time, as GRU4Rec's preprocessing splits its data sets.

A session is a test session when it ends within the last ``test_days`` of the
file (its last click at or after the file's last click minus that many days),
else a training session: no session is cut in two. Unlike GRU4Rec's script,
test clicks on items absent from training are kept: the seed protocol scores
them, the official protocol drops them when it evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sessionrec.model.data import SESSION, TIME
from sessionrec.model.errors import DataError

DAY_S = 86_400.0


@dataclass(frozen=True)
class TimeCut:
    train: pd.DataFrame
    test: pd.DataFrame
    cut: float  # unix seconds: sessions ending at or after it are test sessions

    def line(self) -> str:
        def part(frame: pd.DataFrame) -> str:
            return f"{len(frame):,} clicks in {frame[SESSION].nunique():,} sessions"

        when = pd.Timestamp(self.cut, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"train: {part(self.train)}; test: {part(self.test)} (sessions ending at or after {when})"


def split_by_time(frame: pd.DataFrame, test_days: float) -> TimeCut:
    """Clicks in file order on both sides; a DataError when no session would be left to train on."""
    if not test_days > 0:
        raise DataError(f"test days must be positive, got {test_days}")
    cut = float(frame[TIME].max()) - test_days * DAY_S
    ends = frame.groupby(SESSION, sort=False)[TIME].transform("max")
    test = ends >= cut
    if test.all():  # never none: the session of the last click ends after the cut
        raise DataError(f"every session ends within the last {test_days:g} day(s) of the clicks, so none is left to train on; choose fewer --test-days")
    return TimeCut(frame[~test].reset_index(drop=True), frame[test].reset_index(drop=True), cut)
