"""Stream commands: replay, worker, trainer, demo, and the stream benchmarks."""

from __future__ import annotations

from pathlib import Path

import click

from sessionrec.model.formats import Columns
from sessionrec.stream.cli.options import servers_given, settings_from, speed, with_clicks, with_connection, with_logging
from sessionrec.stream.settings import Settings


@click.command()
@click.argument("csv", type=click.Path(path_type=Path, dir_okay=False))
@with_clicks
@click.option("--speed", "speed_factor", default="max", show_default=True, callback=speed, metavar="max|Nx",
              help="max = as fast as the broker takes clicks; N or Nx = N times real time, keeping the gaps between "
                   "event times (60x plays an hour of clicks in a minute).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None, metavar="EPS",
              help="Send a fixed number of clicks per second instead, ignoring event-time gaps.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Only the first N clicks in event-time order.")
@click.option("--topic", default=None, help="Topic to write [default: $SESSIONREC_CLICKS_TOPIC or clicks; N.clicks with $SESSIONREC_NAMESPACE=N].")
@click.option("--bootstrap", default=None, metavar="HOST:PORT",
              help="Kafka bootstrap servers [default: $SESSIONREC_KAFKA_BOOTSTRAP or 127.0.0.1:9092].")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar on stderr.")
def replay(csv: Path, columns: Columns, speed_factor: float | None, rate: float | None, limit: int | None, topic: str | None,
           bootstrap: str | None, progress: bool) -> None:
    """Replay the clicks of CSV into Kafka in event-time order, keyed by session.

    Each click becomes {"session_id", "item_id", "ts"} JSON on the topic;
    clicks with equal times keep their file order. Ends once the broker has
    acknowledged every click, with a one-line summary.
    """
    import asyncio

    from sessionrec.replay.pacing import Pacing
    from sessionrec.replay.replayer import replay as replay_clicks
    from sessionrec.replay.source import load_stream

    if rate is not None and speed_factor is not None:
        raise click.UsageError("give --speed or --rate, not both")
    settings = settings_from(kafka_bootstrap=bootstrap)
    frame = load_stream(csv, columns, limit)
    summary = asyncio.run(replay_clicks(frame, topic=topic or settings.clicks_topic, kafka=settings,
                                        pacing=Pacing(speed=speed_factor, rate=rate), progress=progress))
    click.echo(summary.line())


@click.command()
@with_connection
@click.option("--model", "model_dir", default=None, help="Checkpoint that seeds the model registry when it is empty [default: runs/model].")
@click.option("--web-port", type=int, default=None, help="Port of the worker's web server (metrics) [default: 6066].")
@click.option("--reference", is_flag=True, help="Serve through the naive per-event Faust agent that `bench stream` compares with, not micro-batches.")
@with_logging("warning")
def worker(reference: bool, **overrides: object) -> None:
    """Serve recommendations: consume clicks, keep session state in Redis, emit top-k lists.

    Runs until stopped (Ctrl-C). Start more workers (up to the number of
    partitions of the clicks topic) to scale out; they share the work through
    their Kafka consumer group. Every setting also reads SESSIONREC_* variables.
    """
    import asyncio

    import faust

    from sessionrec.stream.local.reference import create_reference_app
    from sessionrec.stream.logs import logging_config
    from sessionrec.stream.worker.app import create_app
    from sessionrec.stream.worker.serving import preflight

    settings = settings_from(**overrides)
    config = logging_config(settings, "warning")
    asyncio.run(preflight(settings))
    app = (create_reference_app if reference else create_app)(settings)
    runner = faust.Worker(app, loglevel=config["root"]["level"], quiet=True, logging_config=config)
    runner.spinner = None  # log lines only, also on a terminal
    runner.execute_from_commandline()


@click.command()
@with_connection
@click.option("--interval", "trainer_interval_s", type=click.FloatRange(min=0), default=None,
              help="Wall-clock seconds between fine-tunes; 0 = off [default: 60].")
@click.option("--every-clicks", "trainer_every_clicks", type=click.IntRange(min=0), default=None,
              help="Answered clicks between fine-tunes, so that any replay speed learns alike; 0 = off [default: 0].")
@click.option("--every-event-s", "trainer_every_event_s", type=click.FloatRange(min=0), default=None,
              help="Event-time seconds between fine-tunes; 0 = off [default: 0].")
@click.option("--min-sessions", "trainer_min_sessions", type=int, default=None, help="Sessions needed before the first fine-tune [default: 200].")
@with_logging("info")
def trainer(**overrides: object) -> None:
    """Fine-tune the served model on the stream and promote it when it predicts newer sessions better.

    Reads the recommendations topic (clicks the workers already answered) and
    keeps a bounded window of recent sessions. When a cadence is due (wall
    clock, answered clicks or event time) and new clicks have arrived, it
    fine-tunes the current model on the clicks before a time cut and
    promotes it only if it predicts the sessions that begin after the cut
    better. Every cycle is recorded: `sessionrec cycles`. Prometheus metrics
    are served on /metrics (port SESSIONREC_TRAINER_WEB_PORT, 0 = none).
    Runs until stopped (Ctrl-C).
    """
    import asyncio
    import os
    import signal

    import torch

    from sessionrec.stream.logs import setup_logging
    from sessionrec.stream.redis.store import RedisStore
    from sessionrec.stream.trainer.loop import run_trainer
    from sessionrec.stream.watch.prometheus import TrainerMetrics

    settings = settings_from(**overrides)
    setup_logging(settings, "info")
    torch.set_num_threads(settings.trainer_threads)
    os.nice(settings.trainer_nice)  # fine-tuning yields the CPU to the workers it shares a machine with
    metrics = TrainerMetrics()

    async def main() -> None:
        store = await RedisStore.open(settings)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        try:
            if settings.trainer_web_port > 0:
                metrics.serve(settings.trainer_web_port, settings.web_bind)
            await run_trainer(settings, store, stop, metrics)
        finally:
            await store.close()

    asyncio.run(main())


@click.command()
@with_connection
@click.option("--data", "csv", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Click file to replay [default: ../shared/data/ecommerce/test_data.csv].")
@with_clicks
@click.option("--speed", "speed_factor", default="max", show_default=True, callback=speed, metavar="max|Nx", help="Replay speed: max, or N times real time.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay only the first N clicks.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes (at most the partitions).")
@click.option("--trainer/--no-trainer", default=True, show_default=True,
              help="Learn from the stream: the workers' item neighbours and the online trainer (a fine-tune every 5,000 answered clicks). "
                   "--no-trainer serves the model as trained, to compare with its offline figures.")
@click.option("--model", "model_dir", default=None, help="Checkpoint to serve; trained first if missing [default: runs/model].")
@click.option("--dashboard-port", type=click.IntRange(min=0, max=65535), default=8050, show_default=True,
              help="Port of the live dashboard (a free one if taken; 0: no dashboard).")
@click.option("--report", "report_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("runs/demo"), show_default=True,
              help="Folder of the run report (report.html, report.png).")
def demo(kafka_bootstrap, redis_url, redis_prefix, csv, columns, speed_factor, limit, workers, trainer, model_dir, dashboard_port,  # noqa: ANN001
         report_dir) -> None:  # noqa: ANN001
    """Run the whole pipeline on this machine and report online accuracy.

    Starts Tansu and Redis on free local ports (unless --bootstrap /
    --redis-url or their SESSIONREC_* variables name servers), trains a model if there is none, starts the
    workers and the dashboard (its URL is printed), replays the clicks, shows
    live progress and online accuracy, writes a run report (a self-contained
    HTML page and a PNG of online accuracy, model versions and throughput
    over the replay), and ends with the online figures next to the offline
    evaluation of the same model on the same clicks. Online counters use
    1-second time buckets. Stops everything it started, also on Ctrl-C.
    """
    import asyncio
    import uuid
    from dataclasses import replace

    from sessionrec.model.data import data_dir
    from sessionrec.model.report import console
    from sessionrec.model.workflow import ensure_checkpoint
    from sessionrec.replay.pacing import Pacing
    from sessionrec.stream.local.demo import LOCAL_LEARNING, run_demo, summary_table, watch_lines
    from sessionrec.stream.local.servers import local_services

    csv = csv or data_dir() / "ecommerce" / "test_data.csv"
    kafka_bootstrap, redis_url = servers_given(kafka_bootstrap, redis_url)
    own = kafka_bootstrap is None and redis_url is None
    with local_services(kafka_bootstrap, redis_url) as (bootstrap, redis):
        settings = settings_from(
            kafka_bootstrap=bootstrap, redis_url=redis, model_dir=model_dir, web_port=0,
            trainer_web_port=0, metrics_bucket_s=1, **(LOCAL_LEARNING if trainer else {"learn_online": False}),
        )
        if not own:  # on shared servers, never mix with other runs
            settings = settings.in_namespace(f"demo-{uuid.uuid4().hex[:6]}")
        if redis_prefix:
            settings = replace(settings, redis_prefix=redis_prefix)
        ensure_checkpoint(settings.model_dir)
        console.print(f"Kafka {bootstrap}, Redis {settings.redis_shown}, model {settings.model_dir}; replaying {csv}")
        for line in watch_lines(settings):
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        result = asyncio.run(run_demo(settings, csv, columns, Pacing(speed=speed_factor), limit, workers, trainer,
                                      dashboard_port=dashboard_port or None, report_dir=report_dir))
    console.print()
    console.print(summary_table(result, learning=trainer))
    console.print(f"{result.recommended:,} recommendations for {result.clicks:,} clicks in {result.seconds:.0f} s; "
                  f"models served: {', '.join(result.versions) or '-'}")
    if result.report is not None:
        console.print(f"run report: {result.report[0]} and {result.report[1]}")


@click.command("stream")
@with_connection
@click.option("--clicks", type=click.IntRange(min=1000), default=200_000, show_default=True, help="Clicks in the throughput run.")
@click.option("--sessions", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--items", type=click.IntRange(min=1), default=15_000, show_default=True, help="Catalogue size; items beyond the model's are new to it.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes (at most the partitions).")
@click.option("--reference-clicks", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="Clicks the reference pipeline (a naive per-event Faust agent) serves, in the same run.")
@click.option("--rate", "rates", type=click.FloatRange(min=1), multiple=True, default=(1000.0, 5000.0), show_default=True,
              help="Clicks/s of a steady latency run; repeat for several.")
@click.option("--latency-seconds", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Length of each latency run (longer steady runs stalled the local Tansu broker here).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench/stream.json"), show_default=True, help="JSON file written in any case.")
def bench_stream(kafka_bootstrap, redis_url, redis_prefix, clicks, sessions, items, workers, reference_clicks, rates, latency_seconds, as_json,  # noqa: ANN001
                 out) -> None:  # noqa: ANN001
    """End-to-end clicks/s against a naive Faust agent in the same run, and latency p50/p99 at steady rates.

    Starts a local Tansu broker and Redis unless --bootstrap / --redis-url
    are given, trains a model into runs/model if there is none, and runs the
    workers as separate processes, each phase on topics and keys of its own.
    """
    from sessionrec.model.workflow import ensure_checkpoint
    from sessionrec.stream.local.bench import print_result, run_stream_bench, write_json
    from sessionrec.stream.local.servers import local_services

    with local_services(*servers_given(kafka_bootstrap, redis_url)) as (bootstrap, redis):
        settings = settings_from(kafka_bootstrap=bootstrap, redis_url=redis, redis_prefix=redis_prefix)
        ensure_checkpoint(settings.model_dir)
        result = run_stream_bench(settings, clicks=clicks, sessions=sessions, items=items, workers=workers, rates=list(rates),
                                  latency_seconds=latency_seconds, reference_clicks=reference_clicks)
    write_json(result, out)
    print_result(result, as_json)


@click.command("inference")
@click.option("--model", "model_dir", default="runs/model", show_default=True, help="Checkpoint to load.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda[:N].")
@click.option("--batch", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench_inference(model_dir, device, batch, as_json) -> None:  # noqa: ANN001
    """The inference stage alone: one micro-batch's GRU step, scores over all items and top-k.

    On a GPU it also checks the CUDA path against the CPU path on the same inputs.
    """
    import json
    from dataclasses import asdict

    import torch

    from sessionrec.model.report import console
    from sessionrec.stream.local.bench import inference_table, run_inference_bench

    torch.set_num_threads(Settings.from_env().torch_threads)  # as a worker runs it
    result = run_inference_bench(model_dir, device, batch=batch)
    if as_json:
        click.echo(json.dumps(asdict(result)))
    else:
        console.print(inference_table(result))


@click.command("online")
@with_connection
@click.option("--data", "csv", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Clicks to replay [default: ../shared/data/ecommerce/test_data.csv].")
@click.option("--train", "train_csv", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Training clicks heuristic H learns first [default: train_data.csv beside --data].")
@click.option("--speed", "speed_factor", default="150000x", show_default=True, callback=speed, metavar="Nx",
              help="Replay speed of the time-scaled run (150000x plays the five months of test clicks in about 90 s).")
@click.option("--model", "model_dir", default=None, help="Checkpoint to serve; trained first if missing [default: runs/model].")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON list instead of the table.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench/online.json"), show_default=True, help="JSON file written in any case.")
def bench_online(kafka_bootstrap, redis_url, redis_prefix, csv, train_csv, speed_factor, model_dir, as_json, out) -> None:  # noqa: ANN001
    """Online accuracy with learning off, on at max speed, on time-scaled, and of heuristic H, over the same clicks.

    The first three run the real pipeline (Tansu and Redis started here unless
    given), each on fresh topics and keys; heuristic H runs in this process.
    Prints a table and writes JSON: one object per run with run, hr@1, hr@5,
    hr@20, mrr@20, scored, promotions and clicks_per_s.
    """
    import json

    from sessionrec.model.data import data_dir, read_clicks
    from sessionrec.model.report import console
    from sessionrec.model.workflow import ensure_checkpoint
    from sessionrec.replay.source import load_stream
    from sessionrec.stream.local.online_bench import online_table, run_online_bench, write_json
    from sessionrec.stream.local.servers import local_services

    if speed_factor is None:
        raise click.BadParameter("the time-scaled run needs a factor, such as 150000x", param_hint="--speed")
    csv = csv or data_dir() / "ecommerce" / "test_data.csv"
    train_csv = train_csv or csv.parent / "train_data.csv"
    stream, train = load_stream(csv), read_clicks(train_csv)
    with local_services(*servers_given(kafka_bootstrap, redis_url)) as (bootstrap, redis):
        settings = settings_from(kafka_bootstrap=bootstrap, redis_url=redis, redis_prefix=redis_prefix, model_dir=model_dir, web_port=0)
        ensure_checkpoint(settings.model_dir)
        runs = run_online_bench(settings, stream, train, speed_factor)
    write_json(runs, out)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in runs]))
    else:
        console.print(online_table(runs))
