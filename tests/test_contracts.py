"""The message schemas themselves: valid JSON Schema, shipped in the package, and agreeing with the code that reads and writes messages.

Real produced messages are checked where they are produced: clicks in test_replay, recommendations and dead letters of a real
worker in test_pipeline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from sessionrec.stream.redis.sessions import SessionState
from sessionrec.stream.schemas import NAMES, schema
from sessionrec.stream.worker.clicks import REASONS, Click, Rejected, dead_letter, parse
from sessionrec.stream.worker.processor import Served, encode
from tests.contracts import assert_valid, validator

CLICKS = [  # (payload, the worker takes it)
    (b'{"session_id": "s", "item_id": 523117, "ts": 1600000000.5}', True),
    (b'{"session_id": "s", "item_id": "sku-42", "ts": 1}', True),
    (b'{"session_id": "s", "item_id": -3, "ts": 0, "extra": [1]}', True),  # unknown fields are ignored
    (b'{"session_id": "", "item_id": 1, "ts": 1}', False),
    (b'{"session_id": 7, "item_id": 1, "ts": 1}', False),
    (b'{"session_id": "s", "item_id": "", "ts": 1}', False),
    (b'{"session_id": "s", "item_id": true, "ts": 1}', False),
    (b'{"session_id": "s", "item_id": 1.5, "ts": 1}', False),
    (b'{"session_id": "s", "item_id": [1], "ts": 1}', False),
    (b'{"session_id": "s", "item_id": 1, "ts": "noon"}', False),
    (b'{"session_id": "s", "item_id": 1, "ts": false}', False),
    (b'{"session_id": "s", "item_id": 1}', False),
    (b'["s", 1, 1]', False),
]


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_is_valid_json_schema(name: str) -> None:
    Draft202012Validator.check_schema(schema(name))
    assert schema(name)["$schema"].endswith("/draft/2020-12/schema")


def test_an_unknown_schema_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="click, recommendation, dead_letter"):
        schema("clicks")


@pytest.mark.parametrize(("payload", "taken"), CLICKS)
def test_the_click_schema_accepts_what_the_worker_takes(payload: bytes, taken: bool) -> None:
    parsed = parse(payload, 0, 0, 0, 65536, key=b"s")
    assert isinstance(parsed, Click) is taken
    assert validator("click").is_valid(json.loads(payload)) is taken


def test_the_one_click_the_schema_cannot_tell_apart() -> None:
    """JSON Schema reads 1.0 as an integer; the worker does not (the schema's description says so)."""
    assert validator("click").is_valid({"session_id": "s", "item_id": 1.0, "ts": 1})
    assert isinstance(parse(b'{"session_id": "s", "item_id": 1.0, "ts": 1}', 0, 0, 0, 65536, key=b"s"), Rejected)
    assert "1.0" in schema("click")["description"]


def test_every_kind_of_dead_letter_follows_its_schema() -> None:
    rejected = [parse(payload, 2, 9, 0, 80, key=b"s") for payload, taken in CLICKS if not taken]
    rejected += [parse(None, 0, 1, 0, 40, key=None), parse(b"\xff\xfe not utf-8", 0, 2, 0, 40, key=None), parse(b"x" * 41, 0, 3, 0, 40, key=None),
                 parse(CLICKS[0][0], 0, 4, 0, 80, key=b"another")]
    letters = [json.loads(dead_letter(r, max_payload=8)) for r in rejected]
    assert assert_valid("dead_letter", letters) == len(CLICKS) - 3 + 4
    assert {letter["code"] for letter in letters} == set(REASONS)  # every kind, and the schema names each
    assert set(schema("dead_letter")["properties"]["code"]["enum"]) == set(REASONS)
    assert any(letter["truncated"] for letter in letters)


def test_an_encoded_recommendation_follows_its_schema() -> None:
    state = SessionState("v7", 1, 0, 41, 1600000000.0, 1600000000.123, np.zeros(4, np.float32), np.array([0, 2], np.int32), 2, np.array([2, 1, 0], np.int32))
    click = Click("s-1", "sku-42", 1600000000.0, 1, 41, 1600000000123, 0)
    [(key, value)] = encode([Served(0, click, state)], {0: "523117", 1: "sku-7", 2: "sku-42"}, now=1600000000.2, worker="host:41")
    message = json.loads(value)
    assert key == b"s-1" and assert_valid("recommendation", [message]) == 1
    assert message["item_ids"] == ["sku-42", "sku-7", "523117"]
    broken = {**message, "item_ids": [523117, "sku-7"]}  # the mixed form of earlier releases
    assert not validator("recommendation").is_valid(broken)
