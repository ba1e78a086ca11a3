"""Clicks off the wire: validated into a typed record, or rejected with a reason.

A click that fails validation must never stop the worker: ``parse`` returns
a ``Rejected`` value (not an exception) that becomes one dead letter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Click:
    session_id: str
    item: str  # raw item id as text, the vocabulary's key
    ts: float  # event time, unix seconds
    partition: int
    offset: int
    timestamp_ms: int  # Kafka record time: when the click was produced
    incarnation: int  # of the partition's log


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str  # one of REASONS: a bounded name to count by
    reason: str  # the same, in words, with the detail
    partition: int
    offset: int
    payload: bytes


REASONS = ("empty", "too_large", "not_json", "not_object", "bad_session_id", "bad_item_id", "bad_ts", "bad_key")


def parse(value: bytes | None, partition: int, offset: int, timestamp_ms: int, max_bytes: int, key: bytes | None,
          incarnation: int = 0) -> Click | Rejected:
    """A valid click, or why not; a record whose Kafka key is not its session id is rejected too.

    Keying by session is what puts a session's clicks in one partition, in order,
    for one worker: a click keyed otherwise may land beside another worker's
    clicks of its session, where neither the order nor the offset guard holds.
    """
    def reject(code: str, reason: str) -> Rejected:
        return Rejected(code, reason, partition, offset, value or b"")

    if value is None:
        return reject("empty", "empty message (no value)")
    if len(value) > max_bytes:
        return reject("too_large", f"click of {len(value)} bytes exceeds the limit of {max_bytes}")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return reject("not_json", f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return reject("not_object", f"not a JSON object but {type(obj).__name__}")
    session, item, ts = obj.get("session_id"), obj.get("item_id"), obj.get("ts")
    if not isinstance(session, str) or not session:
        return reject("bad_session_id", "session_id must be a non-empty string")
    if isinstance(item, bool) or not isinstance(item, int | str) or item == "":
        return reject("bad_item_id", "item_id must be an integer or a non-empty string")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return reject("bad_ts", "ts must be a finite number (unix seconds)")
    if key != session.encode():
        shown = "no key" if key is None else f"key {key[:64].decode('utf-8', errors='replace')!r}"
        return reject("bad_key", f"the record has {shown}, not its session_id {session[:64]!r}: clicks must be keyed by session")
    return Click(session, str(item), float(ts), partition, offset, timestamp_ms, incarnation)


def dead_letter(rejected: Rejected, max_payload: int) -> bytes:
    """The DLQ record: why, where it came from, and the start of what was sent."""
    payload = rejected.payload[:max_payload]
    return orjson.dumps({
        "reason": rejected.reason,
        "code": rejected.code,
        "partition": rejected.partition,
        "offset": rejected.offset,
        "payload": payload.decode("utf-8", errors="replace"),
        "truncated": len(rejected.payload) > max_payload,
    })
