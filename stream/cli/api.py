"""The request/response API for services that do not read Kafka: api, and its latency benchmark."""

from __future__ import annotations

from pathlib import Path

import click

from sessionrec.stream.cli.options import servers_given, settings_from, with_logging, with_redis


@click.command()
@with_redis
@click.option("--model", "model_dir", default=None, help="Checkpoint that seeds the model registry when it is empty [default: runs/model].")
@click.option("--bind", "api_bind", default=None, metavar="HOST", help="Address to listen on [default: $SESSIONREC_API_BIND or 127.0.0.1].")
@click.option("--port", "api_port", type=click.IntRange(1, 65535), default=None, help="Port [default: $SESSIONREC_API_PORT or 8000].")
@click.option("--workers", "api_workers", type=click.IntRange(min=1), default=None,
              help="Server processes sharing the port, each with its own copy of the model [default: $SESSIONREC_API_WORKERS or 1].")
@click.option("--openapi", "print_openapi", is_flag=True, help="Print the OpenAPI document (JSON) and exit, connecting to nothing.")
@with_logging("info")
def api(print_openapi: bool, **overrides: object) -> None:
    """Serve recommendations over HTTP to services that do not read Kafka.

    GET /sessions/{id}/recommendations answers the list the stream made after
    the session's latest click (from Redis); POST /recommend answers a list for
    the items given, from the served model, storing nothing. The OpenAPI
    document is at /openapi.json, its pages at /docs. Reads Redis only (the
    session states, the vocabulary, the model registry and the learning
    feed); runs until stopped (Ctrl-C).
    """
    import asyncio
    import json
    import os
    import socket

    import uvicorn

    from sessionrec.stream.api.app import create_app
    from sessionrec.stream.logs import setup_logging
    from sessionrec.stream.worker.served import check_model

    settings = settings_from(**overrides)
    if print_openapi:
        click.echo(json.dumps(create_app(settings).openapi(), indent=2))
        return
    setup_logging(settings, "info")
    with socket.socket() as probe:  # a taken port is one line here, not uvicorn's start-and-stop log
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((settings.api_bind, settings.api_port))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {settings.api_bind}:{settings.api_port}: {exc.strerror or exc} "
                                       "(choose another with --port or SESSIONREC_API_PORT)") from None
    asyncio.run(check_model(settings))
    os.environ.update(settings.to_env())  # every server process builds the app from these (stream.api.app.from_env)
    uvicorn.run("sessionrec.stream.api.app:from_env", factory=True, host=settings.api_bind, port=settings.api_port, workers=settings.api_workers,
                log_config=None, access_log=False, server_header=False)


@click.command("api")
@click.option("--redis-url", default=None, help="Redis URL [default: a local redis-server on a free port, stopped at the end].")
@click.option("--model", "model_dir", default=None, help="Checkpoint to serve; trained first if missing [default: runs/model].")
@click.option("--rate", type=click.FloatRange(min=1), default=1000.0, show_default=True, help="Requests per second, sent open-loop.")
@click.option("--seconds", type=click.FloatRange(min=1), default=10.0, show_default=True, help="Measured seconds per endpoint, after the warm-up.")
@click.option("--warmup", "warmup_s", type=click.FloatRange(min=0), default=2.0, show_default=True, help="Seconds at the rate before measuring.")
@click.option("--clicks", type=click.IntRange(min=100), default=5000, show_default=True,
              help="Test clicks applied to session states first: the sessions GET reads and POST names.")
@click.option("--connections", type=click.IntRange(min=1), default=32, show_default=True, help="Keep-alive connections of the load generator.")
@click.option("--workers", "api_workers", type=click.IntRange(min=1), default=1, show_default=True, help="API server processes (sessionrec api --workers).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench/api.json"), show_default=True, help="JSON file written in any case.")
def bench_api(redis_url, model_dir, rate, seconds, warmup_s, clicks, connections, api_workers, as_json, out) -> None:  # noqa: ANN001 - click passes the options
    """Latency p50/p90/p99 of GET /sessions/{id}/recommendations and POST /recommend at a fixed rate.

    Applies the first --clicks test clicks to session states (the worker's batch
    path, no Kafka), starts `sessionrec api` as a process and drives each
    endpoint from a load generator process at --rate requests/s. Needs only
    Redis (a local one unless --redis-url).
    """
    import contextlib

    from sessionrec.model.data import data_dir
    from sessionrec.model.workflow import ensure_checkpoint
    from sessionrec.replay.source import load_stream
    from sessionrec.stream.local.api_bench import print_result, run_api_bench, write_json
    from sessionrec.stream.local.servers import start_redis

    settings = settings_from(model_dir=model_dir)
    ensure_checkpoint(settings.model_dir)
    frame = load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=clicks)
    _, redis_url = servers_given(None, redis_url)
    with contextlib.ExitStack() as stack:
        if redis_url is None:  # only Redis: the API reads no Kafka
            redis = start_redis()
            stack.callback(redis.stop)
            redis_url = redis.url
        result = run_api_bench(settings_from(model_dir=model_dir, redis_url=redis_url, api_workers=api_workers), frame, rate=rate, seconds=seconds,
                               warmup_s=warmup_s, connections=connections)
    write_json(result, out)
    print_result(result, as_json)
