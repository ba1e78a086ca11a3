"""The `sessionrec` command: the one place every command is registered.

Commands are loaded when they are used (click's lazy-loading pattern), and
each imports its libraries only when it runs, so `sessionrec tail --help`
costs no torch, pandas or Faust.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version

import click

from sessionrec.model.errors import DataError
from sessionrec.stream.settings import SettingsError

COMMANDS = {  # name -> "module:function" under sessionrec.stream.cli
    "up": "local:up",
    "down": "local:down",
    "split": "offline:split",
    "train": "offline:train",
    "evaluate": "offline:evaluate",
    "replay": "streaming:replay",
    "worker": "streaming:worker",
    "trainer": "streaming:trainer",
    "api": "api:api",
    "demo": "streaming:demo",
    "monitor": "watching:monitor",
    "tail": "watching:tail",
    "cycles": "watching:cycles",
    "models": "models:models",
    "dashboard": "watching:dashboard",
}
BENCH_COMMANDS = {
    "model": "offline:bench_model",
    "train": "offline:bench_train",
    "movielens": "offline:bench_movielens",
    "stream": "streaming:bench_stream",
    "online": "streaming:bench_online",
    "inference": "streaming:bench_inference",
    "api": "api:bench_api",
}


class Cli(click.Group):
    """Known failures (bad input, a missing server) end in one readable line, not a traceback.

    ``lazy`` names commands by ``"module:function"`` under sessionrec.stream.cli; they
    are imported when looked up.
    """

    def __init__(self, *args: object, lazy: dict[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            module, function = self.lazy[name].split(":")
            self.add_command(getattr(importlib.import_module(f"sessionrec.stream.cli.{module}"), function), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except (DataError, SettingsError, ConnectionError, TimeoutError, FloatingPointError) as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None


@click.group(cls=Cli, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("sessionrec"), "--version", "-V", prog_name="sessionrec")
def main() -> None:
    """sessionrec: next-click recommendations from a live click stream with GRU4Rec.

    Split a click file by time (split), train and evaluate offline (train,
    evaluate, bench model), replay click files into Kafka (replay), serve
    recommendations (worker), learn from the stream (trainer), watch online
    accuracy (monitor, dashboard, tail, cycles) and manage the served model
    (models). `sessionrec demo` runs it all on this machine.
    """


@main.group(cls=Cli, lazy=BENCH_COMMANDS)
def bench() -> None:
    """Benchmarks that print a table (or JSON) for the README."""
