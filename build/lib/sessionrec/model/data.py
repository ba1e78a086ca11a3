"""Session click files: one loader for every format, one canonical frame.

Every file becomes a frame with ``session_id`` (str), ``item_id`` (str) and
``ts`` (float unix seconds). Item ids are kept as text so that ``523117`` from
a CSV and ``"523117"`` from a JSON click name the same item everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sessionrec.model.errors import DataError
from sessionrec.model.formats import FORMATS, Columns

SESSION, ITEM, TIME = "session_id", "item_id", "ts"
SHARED_DATA = Path("..") / "shared" / "data"  # beside the project folder one works in


def data_dir() -> Path:
    """$SESSIONREC_DATA, or ../shared/data from the current directory (never a path inside the installed package)."""
    env = os.environ.get("SESSIONREC_DATA")
    return Path(env) if env else SHARED_DATA


def data_source() -> str:
    """Where the default data folder came from, for error messages."""
    env = os.environ.get("SESSIONREC_DATA")
    return f"$SESSIONREC_DATA={env}" if env else f"{SHARED_DATA} from {Path.cwd()} ($SESSIONREC_DATA is not set)"


def read_clicks(path: str | Path, columns: Columns = FORMATS["ecommerce"], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read clicks in file order; ``extra`` columns are carried along unchanged."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    wanted = [columns.session, columns.item, columns.time, *extra]
    try:
        raw = pd.read_csv(path, sep=columns.sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be parsed as {columns.sep!r}-separated text ({exc})") from None
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        hint = _separator_hint(raw.columns, columns.sep)
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, raw.columns))}{hint}")
    if raw.empty:
        raise DataError(f"{path}: has a header but no rows")
    ts = pd.to_numeric(raw[columns.time], errors="coerce")
    bad = ts.isna() | ~np.isfinite(ts.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column {columns.time!r} is not a number on data row {row + 1} ({raw[columns.time].iloc[row]!r})")
    for name in (columns.session, columns.item):
        empty = raw[name].str.strip() == ""
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(f"{path}: column {name!r} is empty on data row {row + 1}")
    frame = pd.DataFrame({SESSION: raw[columns.session].str.strip(), ITEM: raw[columns.item].str.strip(), TIME: ts.astype("float64")})
    for name in extra:
        frame[name] = raw[name]
    return frame


def _separator_hint(found: pd.Index, sep: str) -> str:
    if len(found) != 1:
        return ""
    header = str(found[0])
    for other, label in (("\t", "tabs"), (",", "commas"), (";", "semicolons")):
        if other != sep and other in header:
            return f" (the header looks separated by {label}; pass the matching --format or --sep)"
    return ""


def sort_sessions(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable sort by session, then time, so equal timestamps keep file order."""
    return frame.sort_values([SESSION, TIME], kind="stable").reset_index(drop=True)


def load_sessions(path: str | Path, columns: Columns = FORMATS["ecommerce"], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    return sort_sessions(read_clicks(path, columns, extra))


def fresh_starts(frame: pd.DataFrame, timeout_s: float | None) -> np.ndarray:
    """True where a click starts from an empty session state.

    That is a session's first click, and, with a timeout, any click after a
    pause longer than it (DESIGN rule 3). The click after a pause is still a
    target of the state before the pause; only what follows it starts afresh,
    exactly as in the stream.
    """
    first = ~frame[SESSION].eq(frame[SESSION].shift()).to_numpy()
    if not timeout_s:
        return first
    return first | (frame[TIME].diff().to_numpy() > timeout_s)
