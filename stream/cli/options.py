"""Options and conversions shared by several commands."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from sessionrec.model.formats import FORMATS, TIME_FORMATS, Columns, columns_for
from sessionrec.stream.settings import LOG_FORMATS, LOG_LEVELS, PREFIX, Settings

F = TypeVar("F", bound=Callable[..., Any])

_REDIS = [
    click.option("--redis-url", default=None, help="Redis URL [default: $SESSIONREC_REDIS_URL or redis://127.0.0.1:6379/0]."),
    click.option("--redis-prefix", default=None,
                 help="Prefix of every Redis key [default: $SESSIONREC_REDIS_PREFIX or sessionrec; N.sessionrec with $SESSIONREC_NAMESPACE=N]."),
]
_CONNECTION = [
    click.option("--bootstrap", "kafka_bootstrap", default=None, metavar="HOST:PORT",
                 help="Kafka bootstrap servers [default: $SESSIONREC_KAFKA_BOOTSTRAP or 127.0.0.1:9092]."),
    *_REDIS,
]


def with_connection(func: F) -> F:
    """--bootstrap, --redis-url and --redis-prefix, passed on as settings overrides."""
    for option in reversed(_CONNECTION):
        func = option(func)
    return func


def with_redis(func: F) -> F:
    """--redis-url and --redis-prefix, for a command that reads no Kafka, passed on as settings overrides."""
    for option in reversed(_REDIS):
        func = option(func)
    return func


def with_logging(default_level: str) -> Callable[[F], F]:
    """--loglevel and --log-format for a long-running command whose own level is ``default_level``, passed on as settings overrides."""
    options = [
        click.option("--loglevel", "log_level", type=click.Choice(LOG_LEVELS), default=None,
                     help=f"Least severe log level shown [default: $SESSIONREC_LOG_LEVEL or {default_level}]."),
        click.option("--log-format", "log_format", type=click.Choice(LOG_FORMATS), default=None,
                     help="text for a terminal, json for one JSON object per line (stderr) [default: $SESSIONREC_LOG_FORMAT or text]."),
    ]

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def servers_given(kafka_bootstrap: str | None, redis_url: str | None) -> tuple[str | None, str | None]:
    """The broker and Redis a command that can start its own was pointed at: its flags, else the environment."""
    return (kafka_bootstrap or os.environ.get(f"{PREFIX}KAFKA_BOOTSTRAP") or None, redis_url or os.environ.get(f"{PREFIX}REDIS_URL") or None)


def settings_from(**overrides: object) -> Settings:
    """Settings from the environment, with the command line's options on top."""
    return Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})


def speed(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``max`` (None) or a positive factor, as a click callback."""
    from sessionrec.replay.pacing import parse_speed

    if value is None:
        return None
    try:
        return parse_speed(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def layers(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """GRU layer sizes given as ``100`` or ``100,100``."""
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter("give layer sizes as integers, e.g. 100 or 100,100") from None


def separator(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A field separator as typed in a shell: ``\\t`` or ``tab`` is a tab."""
    return "\t" if value in ("\\t", "tab") else value


_CLICKS = [
    click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="ecommerce", show_default=True,
                 help="Column layout of click files: ecommerce (event_time in unix seconds, product_id, user_session), gru4rec "
                      "(tab-separated SessionId, ItemId, Time), movielens (userId, movieId, timestamp) or rees46 (a REES46 / "
                      "Open CDP export: event_time as date-time text, product_id, user_session, event_type). The options below override it."),
    click.option("--session-col", default=None, metavar="NAME", help="Column of the session id [default: the format's]."),
    click.option("--item-col", default=None, metavar="NAME", help="Column of the item id [default: the format's]."),
    click.option("--time-col", default=None, metavar="NAME", help="Column of the event time [default: the format's]."),
    click.option("--sep", default=None, callback=separator, metavar="CHAR", help="Field separator; '\\t' or tab for tabs [default: the format's]."),
    click.option("--time-format", type=click.Choice(TIME_FORMATS), default=None,
                 help="unix = seconds as numbers; datetime = date-time text such as 2019-10-01 00:00:00 UTC (UTC unless it "
                      "names a zone) [default: the format's]."),
    click.option("--event-type", "event_types", multiple=True, metavar="TYPE",
                 help="Keep only rows whose event_type column is TYPE (repeat for several), e.g. view [default: every row]."),
]


def columns_from(fmt: str, session_col: str | None = None, item_col: str | None = None, time_col: str | None = None,
                 sep: str | None = None, time_format: str | None = None, event_types: tuple[str, ...] = ()) -> Columns:
    """The chosen format with the column options on top."""
    return columns_for(fmt).overridden(session=session_col, item=item_col, time=time_col, sep=sep, time_format=time_format, event_types=event_types)


def with_clicks(func: Callable[..., Any]) -> Callable[..., Any]:
    """The click-file options (format and its overrides), passed on as one ``columns`` (model.formats.Columns)."""

    @functools.wraps(func)
    def wrapper(*args: object, fmt: str, session_col: str | None, item_col: str | None, time_col: str | None, sep: str | None,
                time_format: str | None, event_types: tuple[str, ...], **kwargs: object) -> object:
        return func(*args, columns=columns_from(fmt, session_col, item_col, time_col, sep, time_format, event_types), **kwargs)

    for option in reversed(_CLICKS):
        wrapper = option(wrapper)
    return wrapper


DATA_HELP = "Folder with train_data.csv and test_data.csv [default: $SESSIONREC_DATA/ecommerce or ../shared/data/ecommerce]."
_SPLIT = [
    click.option("--data", "folder", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="FOLDER", help=DATA_HELP),
    click.option("--train", "train_file", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="FILE",
                 help="Training clicks, with --test, instead of --data."),
    click.option("--test", "test_file", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="FILE",
                 help="Test clicks, with --train, instead of --data."),
]


def with_split(func: Callable[..., Any]) -> Callable[..., Any]:
    """--data FOLDER or --train FILE --test FILE, with the click-file options, passed on as ``split`` (model.protocol.SplitFiles)."""

    @functools.wraps(func)
    def wrapper(*args: object, folder: Path | None, train_file: Path | None, test_file: Path | None, columns: Columns, **kwargs: object) -> object:
        from sessionrec.model.protocol import SplitFiles  # pandas and torch: only when the command runs

        return func(*args, split=SplitFiles(folder, train_file, test_file, columns), **kwargs)

    wrapper = with_clicks(wrapper)
    for option in reversed(_SPLIT):
        wrapper = option(wrapper)
    return wrapper
