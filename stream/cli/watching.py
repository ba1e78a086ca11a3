"""Commands that watch a running stream: monitor (Redis), tail (Kafka)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from sessionrec.stream.cli.options import settings_from, with_connection


@click.command()
@with_connection
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, metavar="S",
              help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print one table and exit (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the totals and rates and exit.")
def monitor(interval: float, once: bool, as_json: bool, **overrides: object) -> None:
    """Watch online accuracy and throughput of all workers, live.

    Shows clicks, scored clicks, HR@1/5/20 and MRR@20 (each recommendation
    list scored against the session's next click) over the whole run and over
    the last minute, events/s, dead letters, duplicates and the model
    version. Reads Redis only. Ctrl-C prints a final summary. Events/s is
    the change between refreshes; with --once or --json, the clicks of the
    last minute's time buckets over the time they span.
    """
    import asyncio
    import json

    from rich.console import Console

    from sessionrec.stream.watch.monitor import Watch, events_per_s, metrics_table, read_once, snapshot_json

    settings = settings_from(**overrides)
    if once or as_json:
        snapshot = asyncio.run(read_once(settings))
        rate = snapshot.recent_events_per_s
        if as_json:
            click.echo(json.dumps(snapshot_json(snapshot, rate)))
        else:
            Console().print(metrics_table(snapshot.total, snapshot.recent, rate, snapshot.version))
        return
    watch = Watch(settings, interval)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch.run())
    if watch.last is not None:
        first, last = watch.first or watch.last, watch.last
        watched = last.at - first.at
        rate = events_per_s(first, last) if watched > 0 else watch.last_rate
        Console().print(metrics_table(last.total, last.recent, rate, last.version, title="sessionrec — final summary",
                                      caption=f"events/s: average over the {watched:.0f} s watched"))


@click.command()
@with_connection
@click.option("--from-beginning", is_flag=True, help="Start at the beginning of the topic instead of now.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Stop after N recommendations.")
@click.option("--titles", type=click.Path(exists=True, path_type=Path), default=None, metavar="MOVIES_CSV",
              help="MovieLens movies.csv (or its folder): show movie titles next to item ids.")
@click.option("--topic", default=None, help="Topic to read [default: $SESSIONREC_RECS_TOPIC or recommendations].")
@click.option("--json", "as_json", is_flag=True, help="Print each recommendation's raw JSON, one per line.")
def tail(from_beginning: bool, limit: int | None, titles: Path | None, topic: str | None, as_json: bool,
         **overrides: object) -> None:
    """Follow the recommendations as workers send them.

    One line each: the click's event time, session, clicked item, the top 5
    recommended items, the model version and the latency from the click
    reaching Kafka to this line (with --from-beginning, older records show
    their age). Reads every partition without joining a consumer group;
    runs until Ctrl-C or --limit.
    """
    import asyncio

    from sessionrec.stream.watch.tail import print_records

    settings = settings_from(**overrides)
    names = None
    if titles is not None:
        from sessionrec.model.movielens import movie_titles

        names = movie_titles(titles)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(print_records(settings, topic or settings.recs_topic, from_beginning, limit, names, as_json))


@click.command()
@with_connection
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, metavar="N", help="The N newest cycles.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as a JSON list.")
def cycles(limit: int, as_json: bool, **overrides: object) -> None:
    """The trainer's recent cycles: when, on what, both models' held-out figures, and the decision.

    Reads Redis only. Each cycle fine-tunes on the clicks before a time cut
    and compares the candidate with the served model on the sessions that
    begin after it.
    """
    import asyncio
    import json

    from rich.console import Console

    from sessionrec.stream.watch.trainer_log import cycles_table, read_cycles

    records = asyncio.run(read_cycles(settings_from(**overrides), limit))
    if as_json:
        click.echo(json.dumps(records))
    else:
        Console().print(cycles_table(records))
