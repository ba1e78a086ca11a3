"""Options and conversions shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from sessionrec.stream.settings import PREFIX, Settings

F = TypeVar("F", bound=Callable[..., Any])

_CONNECTION = [
    click.option("--bootstrap", "kafka_bootstrap", default=None, metavar="HOST:PORT",
                 help="Kafka bootstrap servers [default: $SESSIONREC_KAFKA_BOOTSTRAP or 127.0.0.1:9092]."),
    click.option("--redis-url", default=None, help="Redis URL [default: $SESSIONREC_REDIS_URL or redis://127.0.0.1:6379/0]."),
    click.option("--redis-prefix", default=None, help="Prefix of every Redis key [default: $SESSIONREC_REDIS_PREFIX or sessionrec]."),
]


def with_connection(func: F) -> F:
    """--bootstrap, --redis-url and --redis-prefix, passed on as settings overrides."""
    for option in reversed(_CONNECTION):
        func = option(func)
    return func


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
