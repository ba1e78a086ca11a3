"""`sessionrec tail`: follow the recommendations topic, one readable line per recommendation.

It reads without a consumer group: all partitions are assigned by hand, so
nothing waits for a group join (Tansu answers one only after half the
session timeout) and no offsets are committed for anyone.

"From now" does not trust the broker's idea of the log end: on Tansu both
``end_offsets()`` and ``offsets_for_times()`` are wrong once producers send
record batches (measured: they count batches, not records, and point into
the middle of the last batch). Instead the consumer starts at the beginning
of every partition and skips each record whose Kafka timestamp (the time the
worker produced it) is before the moment tail started. That is correct on
any broker; it costs one pass over the retained log (a plain consumer reads
~250k records/s) and assumes the workers' clocks agree with this machine's
to well under a second, as on one host or in docker compose.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from sessionrec.model.movielens import movie_titles
from sessionrec.replay.kafka.clients import start_client
from sessionrec.stream.cli.streaming import settings_from, with_connection
from sessionrec.stream.settings import Settings

TOP = 5  # items shown per line
TITLE_WIDTH = 32  # characters of a movie title shown


async def follow(settings: Settings, topic: str, *, from_beginning: bool, since_ms: int | None = None,
                 on_wait: Callable[[str], None] | None = None) -> AsyncIterator[tuple[ConsumerRecord, float]]:
    """Yield ``(record, receive time)`` from every partition of ``topic``, without a consumer group.

    With ``from_beginning`` false, records produced before ``since_ms`` (unix
    milliseconds, default: now) are skipped (see the module notes).
    """
    since_ms = int(time.time() * 1000) if since_ms is None else since_ms
    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=2000, fetch_max_wait_ms=100)  # Tansu holds fetches for the full wait
    await start_client(consumer, settings.kafka_bootstrap)
    try:
        partitions = await _partitions(consumer, topic, on_wait, settings.kafka_bootstrap)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            try:
                fetched = await consumer.getmany(timeout_ms=500)
            except KafkaError as exc:  # a broker restart: aiokafka reconnects by itself
                if on_wait:
                    on_wait(f"fetching from {topic} failed ({exc!r}); retrying")
                await asyncio.sleep(1.0)
                continue
            received = time.time()
            for messages in fetched.values():
                for message in messages:
                    if from_beginning or message.timestamp >= since_ms:
                        yield message, received
    finally:
        await consumer.stop()


def format_line(rec: dict[str, Any], received: float, titles: dict[str, str] | None = None) -> str:
    """One recommendation as text: event time, session, clicked item → top items, model, latency."""
    when = _when(rec.get("ts"))
    clicked = rec.get("item_id")
    shown = [_item(i, titles) for i in (rec.get("item_ids") or [])[:TOP]]
    click_time = rec.get("click_time")
    latency = f"{(received - float(click_time)) * 1000:,.0f} ms" if isinstance(click_time, (int, float)) else "– ms"
    head = f"{when}  session {rec.get('session_id')}"
    if clicked is not None:
        head += f"  clicked {_item(clicked, titles)}"
    return f"{head}  →  {' | '.join(shown) or '(none)'}  model {rec.get('model_version')}  latency {latency}"


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
    settings = settings_from(**overrides)
    names = movie_titles(titles) if titles is not None else None
    try:
        asyncio.run(_tail(settings, topic or settings.recs_topic, from_beginning, limit, names, as_json))
    except KeyboardInterrupt:
        pass


# --- internals ---------------------------------------------------------------------------------


async def _tail(settings: Settings, topic: str, from_beginning: bool, limit: int | None, titles: dict[str, str] | None,
                as_json: bool) -> None:
    shown = 0
    stream = follow(settings, topic, from_beginning=from_beginning, on_wait=lambda text: click.echo(text, err=True))
    try:
        async for message, received in stream:
            value = message.value or b""
            if as_json:
                click.echo(value.decode("utf-8", errors="replace"))
            else:
                try:
                    rec = json.loads(value)
                    if not isinstance(rec, dict):
                        raise ValueError("not a JSON object")
                    line = format_line(rec, received, titles)
                except (ValueError, TypeError) as exc:
                    click.echo(f"skipped {topic}[{message.partition}]@{message.offset}: not a recommendation ({exc})", err=True)
                    continue
                click.echo(line)
            shown += 1
            if limit is not None and shown >= limit:
                break
    finally:
        await stream.aclose()
    sys.stdout.flush()


async def _partitions(consumer: AIOKafkaConsumer, topic: str, on_wait: Callable[[str], None] | None,
                      where: str) -> list[TopicPartition]:
    """Every partition of ``topic``, waiting for the topic to appear.

    Assigning partition 0 makes the client fetch the topic's metadata (a
    broker that auto-creates topics creates it then); the full assignment
    follows once the metadata names the partitions.
    """
    consumer.assign([TopicPartition(topic, 0)])
    for attempt in itertools.count():
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if attempt == 50 and on_wait:
            on_wait(f"waiting for topic {topic!r} to appear on Kafka at {where} ...")
        await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


def _item(item: Any, titles: dict[str, str] | None) -> str:
    if titles is None:
        return str(item)
    title = titles.get(str(item))
    if title is None:
        return str(item)
    if len(title) > TITLE_WIDTH:
        title = title[: TITLE_WIDTH - 1] + "…"
    return f"{item} {title}"


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return "????-??-?? ??:??:??"
