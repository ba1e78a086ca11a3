"""Where a click file keeps the session, item and time of a click: the formats every command reads.

Plain names only (no pandas), so that command-line choices cost nothing to build.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessionrec.model.errors import DataError


@dataclass(frozen=True)
class Columns:
    session: str
    item: str
    time: str
    sep: str = ","


FORMATS: dict[str, Columns] = {
    "ecommerce": Columns("user_session", "product_id", "event_time"),
    "gru4rec": Columns("SessionId", "ItemId", "Time", "\t"),
    "movielens": Columns("userId", "movieId", "timestamp"),
}


def columns_for(name: str) -> Columns:
    try:
        return FORMATS[name]
    except KeyError:
        raise DataError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None
