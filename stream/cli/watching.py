"""Commands that watch a running stream: monitor, dashboard and cycles (Redis), tail (Kafka)."""

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
@click.option("--topic", default=None,
              help="Topic to read [default: $SESSIONREC_RECS_TOPIC or recommendations; N.recommendations with $SESSIONREC_NAMESPACE=N].")
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


@click.command()
@with_connection
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8050, show_default=True, help="Port to serve on (0: any free one).")
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--window", "window_s", type=click.FloatRange(min=10), default=900.0, show_default=True, metavar="S",
              help="Seconds of history the charts show.")
@click.option("--refresh", "refresh_s", type=click.FloatRange(min=0.5), default=2.0, show_default=True, metavar="S",
              help="Seconds between the page's updates.")
def dashboard(port: int, bind: str, window_s: float, refresh_s: float, **overrides: object) -> None:
    """Serve a web page of live charts: online HR@1, HR@20 and MRR@20 per time bucket, clicks/s, consumer lag, latency p50/p99.

    Model promotions, rollbacks and pins are marked on the timeline; the
    workers' heartbeats and the trainer's recent cycles are tables. Reads
    Redis only, so one page covers every worker on the prefix. The page
    loads nothing from the internet (plotly.js comes from the installed
    plotly package) and refreshes itself. Give it the workers' bucket width
    (SESSIONREC_METRICS_BUCKET_S, as `monitor` needs it). Runs until Ctrl-C.
    """
    import asyncio

    from sessionrec.stream.redis.store import RedisStore
    from sessionrec.stream.watch.dashboard import Dashboard

    settings = settings_from(**overrides)

    async def serve() -> None:
        store = await RedisStore.open(settings)
        board = Dashboard(store, window_s=window_s, refresh_s=refresh_s)
        try:
            url = await board.start(bind, port)
            click.echo(f"dashboard on {url} (Redis {settings.redis_shown}, prefix {settings.redis_prefix}); Ctrl-C to stop")
            await asyncio.Event().wait()
        finally:
            await board.stop()
            await store.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
