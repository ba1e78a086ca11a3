"""The model registry against a real Redis: promotions, rollback, pin, the pointer's events, and `sessionrec models`."""

from __future__ import annotations

import asyncio
import json
import uuid

import click
import pytest
import torch
from click.testing import CliRunner
from redis.asyncio import Redis

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS
from sessionrec.model.network import GRU4Rec
from sessionrec.model.vocab import Vocabulary
from sessionrec.stream.cli.main import Cli
from sessionrec.stream.cli.models import models
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.registry import ModelRegistry, Pinned


def _version(seed: int, parent: str | None = None) -> tuple[bytes, dict]:
    torch.manual_seed(seed)
    config = PRESETS["official"].updated(layers=[4])
    ckpt = checkpoint.Checkpoint(net=GRU4Rec(config.network, 6), config=config, vocab=Vocabulary(f"i{i}" for i in range(6)), parent=parent,
                                 metrics={"held_out": {"sessions": 40, "served": {"hr@20": 0.5, "mrr@20": 0.2}, "tuned": {"hr@20": 0.6, "mrr@20": 0.3}}})
    return checkpoint.to_bytes(ckpt)


def _cli() -> click.Group:
    return Cli(name="sessionrec", commands={"models": models})


def _models(redis_url: str, prefix: str, *args: str) -> str:
    result = CliRunner().invoke(_cli(), ["models", *args, "--redis-url", redis_url, "--redis-prefix", prefix])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def registry(redis_url):
    """A registry holding v1 (seeded) and v2 (promoted from v1), current v2; its prefix."""
    prefix = f"t-registry-{uuid.uuid4().hex[:8]}"

    async def go():
        redis = Redis.from_url(redis_url)
        registry = ModelRegistry(redis, Keys(prefix))
        first = await registry.seed(*_version(0))
        second = await registry.promote(*_version(1, parent=first))
        await redis.aclose()
        return first, second

    return prefix, *asyncio.run(go())


def test_rollback_pin_and_unpin_move_the_pointer_and_record_events(redis_url, registry):
    prefix, first, second = registry
    listed = json.loads(_models(redis_url, prefix, "list", "--json"))
    assert [(v["version"], v["current"], v["event"]["event"]) for v in listed] == [(second, True, "promoted"), (first, False, "seeded")]
    assert listed[0]["parent"] == first and listed[0]["metrics"]["held_out"]["tuned"]["mrr@20"] == 0.3

    assert f"rolled back to {first} (was {second})" in _models(redis_url, prefix, "rollback", "--no-wait")  # to the parent by default
    assert f"pinned {second} (was {first})" in _models(redis_url, prefix, "pin", second, "--no-wait")

    async def while_pinned():
        redis = Redis.from_url(redis_url)
        registry = ModelRegistry(redis, Keys(prefix))
        with pytest.raises(Pinned):
            await registry.promote(*_version(2, parent=second))
        with pytest.raises(Pinned):
            await registry.rollback(first)
        state = await registry.current(), await registry.pinned(), await registry.history()
        await redis.aclose()
        return state

    assert asyncio.run(while_pinned()) == (second, second, [second, first])  # the refused promotion stored nothing
    assert f"unpinned {second}" in _models(redis_url, prefix, "unpin")
    listed = json.loads(_models(redis_url, prefix, "list", "--json"))
    assert [(v["version"], v["current"], v["pinned"], v["event"]["event"]) for v in listed] == [(second, True, False, "pinned"),
                                                                                                 (first, False, False, "rolled back")]

    async def events():
        redis = Redis.from_url(redis_url)
        registry = ModelRegistry(redis, Keys(prefix))
        third = await registry.promote(*_version(2, parent=second))  # unpinned: the trainer may promote again
        found = [(e["event"], e["version"], e["previous"]) for e in reversed(await registry.events())]
        await redis.aclose()
        return third, found

    third, found = asyncio.run(events())
    assert found == [("seeded", first, None), ("promoted", second, first), ("rolled back", first, second), ("pinned", second, first),
                     ("unpinned", second, second), ("promoted", third, second)]


def test_show_and_the_table(redis_url, registry):
    prefix, first, second = registry
    shown = _models(redis_url, prefix, "show", second)
    assert f"model {second} (current)" in shown and f"parent          {first}" in shown and "0.3000" in shown
    table = CliRunner().invoke(_cli(), ["models"], env={"SESSIONREC_REDIS_URL": redis_url, "SESSIONREC_REDIS_PREFIX": prefix, "COLUMNS": "200"}).output
    assert second in table and "current" in table and "0.2000 → 0.3000" in table  # no command: the list, as the environment says


def test_unknown_versions_and_a_missing_parent_are_one_line(redis_url, registry):
    prefix, first, second = registry
    for args in (["show", "v000"], ["rollback", "v000", "--no-wait"], ["pin", "v000", "--no-wait"]):
        result = CliRunner().invoke(_cli(), ["models", *args, "--redis-url", redis_url, "--redis-prefix", prefix])
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1 and "v000 is not" in result.output, result.output
    _models(redis_url, prefix, "rollback", "--no-wait")  # to first, which was seeded: it has no parent
    result = CliRunner().invoke(_cli(), ["models", "rollback", "--no-wait", "--redis-url", redis_url, "--redis-prefix", prefix])
    assert result.exit_code == 1 and f"the parent of {first} is not kept" in result.output and second in result.output
