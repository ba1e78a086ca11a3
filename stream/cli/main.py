"""The `sessionrec` command: one entry point for every part of the project."""

from __future__ import annotations

import click
import torch

from sessionrec.stream.cli.offline import bench_commands as model_bench_commands
from sessionrec.stream.cli.offline import commands as model_commands
from sessionrec.model.data import DataError
from sessionrec.stream.cli.replaying import replay
from sessionrec.stream.cli.streaming import bench_commands as stream_bench_commands
from sessionrec.stream.cli.streaming import commands as stream_commands
from sessionrec.stream.watch.monitor import monitor
from sessionrec.stream.settings import SettingsError
from sessionrec.stream.watch.tail import tail


class Cli(click.Group):
    """Known failures (bad input, a missing server) end in one readable line, not a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except (DataError, SettingsError, ConnectionError, TimeoutError, FloatingPointError) as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """sessionrec: next-click recommendations from a live click stream with GRU4Rec.

    Train and evaluate offline (train, evaluate, bench model), replay click
    files into Kafka (replay), serve recommendations (worker) and watch
    online accuracy (monitor, tail). `sessionrec demo` runs it all on this
    machine.
    """
    torch.set_flush_denormal(True)  # denormal floats (softmax tails, tiny gradients) are ~20x slower on x86


@main.group()
def bench() -> None:
    """Benchmarks that print a table (or JSON) for the README."""


for command in [*model_commands, replay, *stream_commands, monitor, tail]:
    main.add_command(command)
for command in [*model_bench_commands, *stream_bench_commands]:
    bench.add_command(command)


if __name__ == "__main__":
    main()
