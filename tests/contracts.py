"""Checking messages against the JSON Schemas the package ships (sessionrec.stream.schemas)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from sessionrec.stream.schemas import schema


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name))


def assert_valid(name: str, messages: Iterable[Any]) -> int:
    """Every message follows the schema ``name``; returns how many were checked (so a test can insist on some)."""
    count = 0
    for message in messages:
        error = next(iter(validator(name).iter_errors(message)), None)
        assert error is None, f"a {name} message breaks its schema at {list(error.absolute_path)}: {error.message}; message: {message}"
        count += 1
    return count
