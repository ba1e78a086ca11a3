"""JSON Schemas of the messages the project sends: clicks, recommendations and dead letters (DESIGN, Contracts).

They ship as package data, so a service validates against the schemas of
the release it talks to; the tests check every kind of message the code
produces against them.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

NAMES = ("click", "recommendation", "dead_letter")


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one kind of message, by its name in ``NAMES``."""
    if name not in NAMES:
        raise KeyError(f"no schema named {name!r}; there are {', '.join(NAMES)}")
    return json.loads(files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
