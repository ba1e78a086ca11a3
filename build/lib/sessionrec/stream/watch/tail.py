"""What `sessionrec tail` prints: the recommendations topic, followed, one readable line per recommendation.

It reads without a consumer group (replay.kafka.reader.TopicReader).

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

import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from click import echo

from sessionrec.replay.kafka.connection import KafkaConnection
from sessionrec.replay.kafka.reader import TopicReader

TOP = 5  # items shown per line
TITLE_WIDTH = 32  # characters of a movie title shown


async def follow(kafka: KafkaConnection, topic: str, *, from_beginning: bool, since_ms: int | None = None,
                 on_wait: Callable[[str], None] | None = None) -> AsyncIterator[tuple[ConsumerRecord, float]]:
    """Yield ``(record, receive time)`` from every partition of ``topic``, without a consumer group.

    With ``from_beginning`` false, records produced before ``since_ms`` (unix
    milliseconds, default: now) are skipped (see the module notes).
    """
    since_ms = int(time.time() * 1000) if since_ms is None else since_ms
    async with TopicReader(kafka, topic, on_wait=on_wait) as reader:
        while True:
            messages = await reader.poll(timeout_ms=500)
            received = time.time()
            for message in messages:
                if from_beginning or message.timestamp >= since_ms:
                    yield message, received


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


async def print_records(kafka: KafkaConnection, topic: str, from_beginning: bool, limit: int | None, titles: dict[str, str] | None,
                        as_json: bool) -> None:
    """Print each recommendation until ``limit``; records that are not one are reported on stderr."""
    shown = 0
    stream = follow(kafka, topic, from_beginning=from_beginning, on_wait=lambda text: echo(text, err=True))
    try:
        async for message, received in stream:
            value = message.value or b""
            if as_json:
                echo(value.decode("utf-8", errors="replace"))
            else:
                try:
                    rec = json.loads(value)
                    if not isinstance(rec, dict):
                        raise ValueError("not a JSON object")
                    line = format_line(rec, received, titles)
                except (ValueError, TypeError) as exc:
                    echo(f"skipped {topic}[{message.partition}]@{message.offset}: not a recommendation ({exc})", err=True)
                    continue
                echo(line)
            shown += 1
            if limit is not None and shown >= limit:
                break
    finally:
        await stream.aclose()
    sys.stdout.flush()


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
