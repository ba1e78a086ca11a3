"""`sessionrec replay`: play a click file into Kafka as a live stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from sessionrec.model.data import FORMATS
from sessionrec.replay.pacing import Pacing, parse_speed
from sessionrec.replay.replayer import replay as replay_clicks
from sessionrec.replay.source import load_stream
from sessionrec.stream.settings import Settings


def _speed(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    try:
        return parse_speed(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("csv", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="ecommerce", show_default=True,
              help="Column layout of the file: ecommerce (event_time, product_id, user_session), gru4rec (tab-separated "
                   "SessionId, ItemId, Time) or movielens (userId, movieId, timestamp).")
@click.option("--speed", default="max", show_default=True, callback=_speed, metavar="max|Nx",
              help="max = as fast as the broker takes clicks; N or Nx = N times real time, keeping the gaps between "
                   "event times (60x plays an hour of clicks in a minute).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None, metavar="EPS",
              help="Send a fixed number of clicks per second instead, ignoring event-time gaps.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Only the first N clicks in event-time order.")
@click.option("--topic", default=None, help="Topic to write [default: $SESSIONREC_CLICKS_TOPIC or clicks].")
@click.option("--bootstrap", default=None, metavar="HOST:PORT",
              help="Kafka bootstrap servers [default: $SESSIONREC_KAFKA_BOOTSTRAP or 127.0.0.1:9092].")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar on stderr.")
def replay(csv: Path, fmt: str, speed: float | None, rate: float | None, limit: int | None, topic: str | None,
           bootstrap: str | None, progress: bool) -> None:
    """Replay the clicks of CSV into Kafka in event-time order, keyed by session.

    Each click becomes {"session_id", "item_id", "ts"} JSON on the topic;
    clicks with equal times keep their file order. Ends once the broker has
    acknowledged every click, with a one-line summary.
    """
    if rate is not None and speed is not None:
        raise click.UsageError("give --speed or --rate, not both")
    settings = Settings.from_env(**({"kafka_bootstrap": bootstrap} if bootstrap else {}))
    frame = load_stream(csv, fmt, limit)
    summary = asyncio.run(replay_clicks(frame, topic=topic or settings.clicks_topic, kafka_kwargs=settings.kafka_client_kwargs(),
                                        pacing=Pacing(speed=speed, rate=rate), progress=progress))
    click.echo(summary.line())
