"""Shared pytest fixtures.

Sections: real servers (one Tansu and one Redis for the whole run, and a
Redis Cluster for the tests that ask for one, started on free loopback ports
by stream/local/servers.py, stopped at the end), a
small trained model, a clean replay (for the fault and scale tests), then
per-test names. Add new fixtures under a section of their own.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS
from sessionrec.model.data import data_dir
from sessionrec.model.protocol import load_split
from sessionrec.model.workflow import train_checkpoint
from sessionrec.replay.source import load_stream
from sessionrec.stream.local.servers import start_redis, start_tansu
from tests.cluster import redis_cluster
from tests.replays import CLICKS, Run, servers, stream

# --- real servers (session-scoped, started on first use) --------------------------------------
# Tansu quirks that matter in tests: a consumer-group join is answered only after half the
# session timeout (prefer consumers without a group: assign partitions, seek to beginning);
# end_offsets() and auto_offset_reset="latest" are wrong (use "earliest"); any metadata lookup
# of an unknown topic creates it with 4 partitions, so use `topic_name` for a fresh topic.


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """"127.0.0.1:PORT" of a Tansu broker (memory storage) shared by all tests."""
    service = start_tansu()
    try:
        yield service.url
    finally:
        service.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """"redis://127.0.0.1:PORT/0" of a throw-away redis-server shared by all tests."""
    service = start_redis()
    try:
        yield service.url
    finally:
        service.stop()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """"redis://127.0.0.1:PORT/0" of one node of a three-master Redis Cluster (tests.cluster), for the tests that need a cluster."""
    with redis_cluster() as url:
        yield url


# --- a small trained model (session-scoped: trained once) -------------------------------------


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint folder: the best preset (blend and item neighbours) with 16 units, one epoch on the electronics shop's training clicks (seconds)."""
    config = PRESETS["best"].updated(layers=[16], n_sample=64, epochs=1)
    ckpt, _ = train_checkpoint(config, load_split(), progress=False)
    folder = tmp_path_factory.mktemp("model")
    checkpoint.save(ckpt, folder)
    return folder


# --- a clean replay (session-scoped): what faulty runs of the same clicks must equal ------------


@pytest.fixture(scope="session")
def replayed_clicks() -> pd.DataFrame:
    """The electronics shop's first CLICKS test clicks, which the fault and scale tests replay."""
    return load_stream(data_dir() / "ecommerce" / "test_data.csv", limit=CLICKS)


@pytest.fixture(scope="session")
def clean_run(small_model: Path, replayed_clicks: pd.DataFrame) -> Run:
    """``replayed_clicks`` through one worker, nothing going wrong (tests.replays)."""
    with servers() as own:
        return asyncio.run(stream(own.settings(small_model), replayed_clicks))


# --- per-test names ---------------------------------------------------------------------------


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic no other test uses (Tansu keeps every topic until it stops)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:60].strip("-.")
    return f"{stem}-{uuid.uuid4().hex[:8]}"
