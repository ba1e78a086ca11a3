"""The request/response API for services that do not read Kafka: api, and its latency benchmark."""

from __future__ import annotations

import click

from sessionrec.stream.cli.options import settings_from, with_logging


@click.command()
@click.option("--redis-url", default=None, help="Redis URL [default: $SESSIONREC_REDIS_URL or redis://127.0.0.1:6379/0].")
@click.option("--redis-prefix", default=None, help="Prefix of every Redis key [default: $SESSIONREC_REDIS_PREFIX or sessionrec].")
@click.option("--model", "model_dir", default=None, help="Checkpoint that seeds the model registry when it is empty [default: runs/model].")
@click.option("--bind", "api_bind", default=None, metavar="HOST", help="Address to listen on [default: $SESSIONREC_API_BIND or 127.0.0.1].")
@click.option("--port", "api_port", type=click.IntRange(1, 65535), default=None, help="Port [default: $SESSIONREC_API_PORT or 8000].")
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

    import uvicorn

    from sessionrec.stream.api.app import create_app
    from sessionrec.stream.logs import setup_logging
    from sessionrec.stream.worker.served import check_model

    settings = settings_from(**overrides)
    app = create_app(settings)
    if print_openapi:
        click.echo(json.dumps(app.openapi(), indent=2))
        return
    setup_logging(settings, "info")
    asyncio.run(check_model(settings))
    uvicorn.run(app, host=settings.api_bind, port=settings.api_port, log_config=None, access_log=False, server_header=False)
