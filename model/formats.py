"""Where a click file keeps the session, item and time of a click, and how to read them: the formats every command reads.

Plain names only (no pandas), so that command-line choices cost nothing to build.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sessionrec.model.errors import DataError

TIME_FORMATS = ("unix", "datetime")  # unix: seconds as numbers; datetime: date-time text, UTC unless it names a zone
EVENT_TYPE = "event_type"  # the column an event-type filter reads (REES46 / Open CDP exports mix view, cart, purchase)


@dataclass(frozen=True)
class Columns:
    session: str
    item: str
    time: str
    sep: str = ","
    time_format: str = "unix"
    event_types: tuple[str, ...] = ()  # keep only rows whose event_type is one of these; () keeps every row

    def __post_init__(self) -> None:
        if self.time_format not in TIME_FORMATS:
            raise DataError(f"unknown time format {self.time_format!r}; choose one of {', '.join(TIME_FORMATS)}")
        if len(self.sep) != 1:
            raise DataError(f"the separator must be one character, got {self.sep!r} (a tab: --sep '\\t')")

    def overridden(self, **changes: str | tuple[str, ...] | None) -> Columns:
        """A copy with the given fields replaced; None and () leave a field as the format has it."""
        return replace(self, **{k: v for k, v in changes.items() if v not in (None, ())})


FORMATS: dict[str, Columns] = {
    "ecommerce": Columns("user_session", "product_id", "event_time"),
    "gru4rec": Columns("SessionId", "ItemId", "Time", "\t"),
    "movielens": Columns("userId", "movieId", "timestamp"),
    "rees46": Columns("user_session", "product_id", "event_time", time_format="datetime"),  # the raw REES46 / Open CDP export
}


def columns_for(name: str) -> Columns:
    try:
        return FORMATS[name]
    except KeyError:
        raise DataError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None
