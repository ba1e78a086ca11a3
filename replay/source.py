"""Click files as a stream: load, order by event time, encode for the wire.

A click on the wire (topic ``clicks``, key = session id in UTF-8) is the JSON
object ``{"session_id": str, "item_id": int|str, "ts": float}`` (DESIGN,
Contracts). Encoding is hand-rolled around the C string escaper of ``json``:
a general ``json.dumps`` per click costs more than sending it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from json.encoder import encode_basestring_ascii as _json_str  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sessionrec.model.data import ITEM, SESSION, TIME, read_clicks
from sessionrec.model.errors import DataError
from sessionrec.model.formats import FORMATS, Columns
from sessionrec.replay.kafka.wire import is_int_text

Click = Mapping[str, Any]  # {"session_id": str, "item_id": int | str, "ts": float}
Record = tuple[bytes, bytes, float]  # (key, value, ts): a click ready for Kafka, its event time for pacing


def load_stream(path: str | Path, columns: Columns = FORMATS["ecommerce"], limit: int | None = None) -> pd.DataFrame:
    """A click file in the order it happened; ``limit`` keeps the first N after ordering."""
    if limit is not None and limit < 1:
        raise DataError(f"limit must be at least 1, got {limit}")
    frame = order_by_time(read_clicks(path, columns))
    return frame if limit is None else frame.head(limit).reset_index(drop=True)


def order_by_time(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable sort by event time: equal timestamps keep file order.

    The offline evaluator reads a session's clicks in file order when their
    times tie, so the stream must present them in that same order.
    """
    return frame.sort_values(TIME, kind="stable").reset_index(drop=True)


def frame_records(frame: pd.DataFrame) -> Iterator[Record]:
    """Encoded clicks from a canonical frame, in frame order (the fast path for files)."""
    missing = [c for c in (SESSION, ITEM, TIME) if c not in frame.columns]
    if missing:
        raise DataError(f"click frame lacks column(s) {', '.join(missing)}")
    times = frame[TIME].to_numpy(dtype=float)
    if not np.isfinite(times).all():
        raise DataError(f"click frame has a non-finite {TIME!r} on row {int(np.flatnonzero(~np.isfinite(times))[0]) + 1}")
    for session, item, ts in zip(frame[SESSION].astype(str).tolist(), frame[ITEM].astype(str).tolist(), times.tolist(), strict=True):
        yield _record(session, item if is_int_text(item) else _json_str(item), ts)


def encode(click: Click) -> Record:
    """One wire click (dict) as a record; extra fields are dropped, bad ones raise ValueError."""
    session, item, ts = click["session_id"], click["item_id"], float(click["ts"])
    if not isinstance(session, str):
        raise ValueError(f"session_id must be a string, got {session!r}")
    if not math.isfinite(ts):
        raise ValueError(f"ts must be finite, got {ts!r} (session {session!r})")
    if isinstance(item, str):
        item_json = _json_str(item)
    elif isinstance(item, int | np.integer) and not isinstance(item, bool):
        item_json = str(int(item))
    else:
        raise ValueError(f"item_id must be an int or a string, got {item!r} (session {session!r})")
    return _record(session, item_json, ts)


def _record(session: str, item_json: str, ts: float) -> Record:
    return session.encode(), f'{{"session_id":{_json_str(session)},"item_id":{item_json},"ts":{ts!r}}}'.encode(), ts
