"""Stream commands: worker."""

from __future__ import annotations

import click

from stream.settings import Settings

connection_options = [
    click.option("--bootstrap", "kafka_bootstrap", default=None, metavar="HOST:PORT", help="Kafka bootstrap servers [default: $SESSIONREC_KAFKA_BOOTSTRAP or 127.0.0.1:9092]."),
    click.option("--redis-url", default=None, help="Redis URL [default: $SESSIONREC_REDIS_URL or redis://127.0.0.1:6379/0]."),
    click.option("--redis-prefix", default=None, help="Prefix of every Redis key [default: $SESSIONREC_REDIS_PREFIX or sessionrec]."),
]


def with_connection(func):  # noqa: ANN001, ANN201 - decorator
    for option in reversed(connection_options):
        func = option(func)
    return func


def settings_from(**overrides: object) -> Settings:
    """Settings from the environment, with the command line's options on top."""
    return Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})


@click.command()
@with_connection
@click.option("--model", "model_dir", default=None, help="Checkpoint that seeds the model registry when it is empty [default: runs/model].")
@click.option("--web-port", type=int, default=None, help="Port of the worker's web server (metrics) [default: 6066].")
@click.option("--loglevel", default="warning", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def worker(loglevel: str, **overrides: object) -> None:
    """Serve recommendations: consume clicks, keep session state in Redis, emit top-k lists.

    Runs until stopped (Ctrl-C). Start more workers (up to the number of
    partitions of the clicks topic) to scale out; they share the work through
    their Kafka consumer group. Every setting also reads SESSIONREC_* variables.
    """
    import faust

    from stream.app import create_app

    app = create_app(settings_from(**overrides))
    faust.Worker(app, loglevel=loglevel.upper(), quiet=True).execute_from_commandline()


commands = [worker]
