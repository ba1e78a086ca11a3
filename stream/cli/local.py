"""Local servers for running the parts by hand: up, down."""

from __future__ import annotations

from pathlib import Path

import click

from sessionrec.stream.settings import Settings


@click.command()
@click.option("--kafka-port", type=click.IntRange(1, 65535), default=None, help="Port for Tansu [default: a free one].")
@click.option("--redis-port", type=click.IntRange(1, 65535), default=None, help="Port for Redis [default: a free one].")
def up(kafka_port: int | None, redis_port: int | None) -> None:
    """Start Tansu (Kafka) and Redis on loopback, running until `sessionrec down`.

    Prints `export SESSIONREC_...=...` lines that point every command at
    them; `eval "$(sessionrec up)"` sets them in this shell, and pasting them
    sets them in another. The servers are recorded in
    $SESSIONREC_SERVERS_FILE (runs/local-servers.json); a second `up`
    refuses while they run. Memory storage only: their data goes with them.
    """
    from sessionrec.stream.local.up import up as start

    path = Path(Settings.from_env().servers_file)
    servers = start(path, kafka_port, redis_port)
    click.echo(servers.export_lines())
    click.echo(f"{servers.tansu.line()} and {servers.redis.line()} are up, recorded in {path}; `sessionrec down` stops them.", err=True)


@click.command()
def down() -> None:
    """Stop the Tansu and Redis that `sessionrec up` started (and only those)."""
    from sessionrec.stream.local.up import down as stop

    path = Path(Settings.from_env().servers_file)
    stopped = stop(path)
    if not stopped:
        click.echo(f"no local servers are up (nothing recorded in {path})", err=True)
    for server, running in stopped:
        click.echo(f"stopped {server.line()}" if running else f"{server.line()} had already stopped", err=True)
