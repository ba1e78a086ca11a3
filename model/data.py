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
from sessionrec.model.formats import EVENT_TYPE, FORMATS, Columns

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
    """Read clicks in file order, only the rows of ``columns.event_types`` when given; ``extra`` columns are carried along unchanged.

    Only the columns used are read: exports such as REES46's carry many more.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    wanted = list(dict.fromkeys([columns.session, columns.item, columns.time, *extra, *([EVENT_TYPE] if columns.event_types else [])]))
    found = _read(path, columns.sep, nrows=0).columns
    missing = [c for c in wanted if c not in found]
    if missing:
        hint = _separator_hint(found, columns.sep) or (" (--event-type filters on it)" if EVENT_TYPE in missing else "")
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, found))}{hint}")
    raw = _read(path, columns.sep, usecols=wanted)
    if raw.empty:
        raise DataError(f"{path}: has a header but no rows")
    if columns.event_types:
        raw = _only_events(path, raw, columns.event_types)
    ts = _seconds(path, raw[columns.time], columns.time_format)
    for name in (columns.session, columns.item):
        empty = raw[name].str.strip() == ""
        if empty.any():
            raise DataError(f"{path}: column {name!r} is empty on data row {_row(empty)}")
    frame = pd.DataFrame({SESSION: raw[columns.session].str.strip(), ITEM: raw[columns.item].str.strip(), TIME: ts})
    for name in extra:
        frame[name] = raw[name]
    return frame.reset_index(drop=True)


def write_clicks(frame: pd.DataFrame, path: str | Path) -> None:
    """A canonical frame as an ecommerce file (event_time in unix seconds, product_id, user_session): what every command reads by default."""
    names = FORMATS["ecommerce"]
    times = frame[TIME]
    if (times % 1 == 0).all():
        times = times.astype("int64")
    pd.DataFrame({names.time: times, names.item: frame[ITEM], names.session: frame[SESSION]}).to_csv(path, index=False)


def _read(path: Path, sep: str, **options: object) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, **options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be parsed as {sep!r}-separated text ({exc})") from None


def _row(bad: pd.Series) -> int:
    """The 1-based data row of the file where ``bad`` is first true (the frame keeps the file's row labels)."""
    return int(bad.index[bad.to_numpy()][0]) + 1


def _only_events(path: Path, raw: pd.DataFrame, types: tuple[str, ...]) -> pd.DataFrame:
    events = raw[EVENT_TYPE].str.strip()
    kept = raw[events.isin(types)]
    if kept.empty:
        raise DataError(f"{path}: no rows with {EVENT_TYPE} {' or '.join(map(repr, types))}; found {', '.join(map(repr, sorted(events.unique())[:10]))}")
    return kept


def _seconds(path: Path, values: pd.Series, time_format: str) -> pd.Series:
    """Event times as float unix seconds; date-time text without a zone counts as UTC."""
    if time_format == "unix":
        ts = pd.to_numeric(values, errors="coerce").astype("float64")
    else:
        # A zone named " UTC" (REES46) parses ~25x slower than none, which means UTC anyway; one spelling, inferred
        # from the first row, is fast; rows spelt otherwise (another zone notation, say) are then parsed one by one.
        text = values.str.removesuffix(" UTC")
        times = pd.to_datetime(text, utc=True, errors="coerce")
        odd = times.isna()
        if odd.any():
            times[odd] = pd.to_datetime(text[odd], utc=True, errors="coerce", format="mixed")
        ts = (times - _EPOCH) / pd.Timedelta(seconds=1)
    bad = ts.isna() | ~np.isfinite(ts.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = _row(bad)
        value = values.loc[row - 1]
        raise DataError(f"{path}: column {values.name!r} is not {_TIME_WHAT[time_format]} on data row {row} ({value!r}){_time_hint(value, time_format)}")
    return ts


_EPOCH = pd.Timestamp(0, tz="UTC")
_TIME_WHAT = {"unix": "a number", "datetime": "a date-time"}


def _time_hint(value: str, time_format: str) -> str:
    if time_format == "unix" and not pd.isna(pd.to_datetime(value, utc=True, errors="coerce")):
        return "; for date-time text pass --time-format datetime (or --format rees46)"
    if time_format == "datetime" and not pd.isna(pd.to_numeric(value, errors="coerce")):
        return "; for unix seconds pass --time-format unix"
    return ""


def _separator_hint(found: pd.Index, sep: str) -> str:
    if len(found) != 1:
        return ""
    header = str(found[0])
    for other, label in (("\t", "tabs"), (",", "commas"), (";", "semicolons")):
        if other != sep and other in header:
            return f" (the header looks separated by {label}; pass --sep {_shell_sep(other)} or the matching --format)"
    return ""


def _shell_sep(sep: str) -> str:
    return "'\\t'" if sep == "\t" else repr(sep)


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
