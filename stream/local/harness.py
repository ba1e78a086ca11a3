"""Running the pipeline from Python: worker processes and a reader of the recommendations.

The demo, the stream benchmark and the end-to-end tests all start real
workers as child processes (configured through SESSIONREC_* variables, as in
production) and read what they emit from Kafka.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from sessionrec.replay.kafka.reader import TopicReader
from sessionrec.replay.pacing import Pacing
from sessionrec.replay.replayer import replay
from sessionrec.stream.local.servers import die_with_parent
from sessionrec.stream.redis.metrics import Counts
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings


class WorkerProcess:
    """`sessionrec worker` (or another long-running command) as a child process, its output in a log file."""

    def __init__(self, settings: Settings, name: str = "worker", command: str = "worker", args: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.log_path = Path(tempfile.mkdtemp(prefix="sessionrec-")) / f"{name}.log"
        env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "sessionrec.stream.cli", command, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=functools.partial(die_with_parent, os.getpid()))

    @property
    def worker_id(self) -> str:
        """How a worker process names itself in its heartbeats and recommendations (stream.worker.WORKER_ID)."""
        return f"{socket.gethostname()}:{self.process.pid}"

    def check(self) -> None:
        """Raise with the end of the log if the process died."""
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"the worker exited with code {self.process.returncode}: {' | '.join(tail)} (log: {self.log_path})")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass
class Received:
    rec: dict[str, Any]
    at: float  # wall-clock time it was read
    size: int  # of its record: key and value, in bytes


class RecommendationReader:
    """Reads the recommendations topic from the beginning, without a consumer group, de-duplicating by (partition, offset)."""

    def __init__(self, settings: Settings) -> None:
        self.reader = TopicReader(settings, settings.recs_topic, fetch_wait_ms=5)  # Tansu holds every fetch for the full wait
        self.received: dict[tuple[int, int], Received] = {}
        self.duplicates = 0

    async def __aenter__(self) -> RecommendationReader:
        await self.reader.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.reader.__aexit__(None, None, None)

    async def poll(self, timeout_ms: int = 200) -> int:
        """Read what is there; returns how many new recommendations arrived."""
        fresh = 0
        messages = await self.reader.poll(timeout_ms)
        now = time.time()
        for message in messages:
            rec = orjson.loads(message.value)
            key = (rec["partition"], rec["offset"])
            if key in self.received:
                self.duplicates += 1
            else:
                self.received[key] = Received(rec, now, len(message.key or b"") + len(message.value))
                fresh += 1
        return fresh

    async def wait_for(self, count: int, timeout_s: float, check: Any = None) -> None:
        """Poll until ``count`` distinct recommendations arrived; ``check()`` may raise to give up early."""
        await self.wait_until(lambda received: len(received) >= count, timeout_s, check, f"{count} recommendations")

    async def wait_until(self, done: Callable[[dict[tuple[int, int], Received]], bool], timeout_s: float, check: Any = None,
                         what: str = "the recommendations awaited") -> None:
        """Poll until ``done(received)`` holds; ``check()`` may raise to give up early."""
        deadline = time.monotonic() + timeout_s
        while not done(self.received):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not arrive within {timeout_s:.0f} s (only {len(self.received)} recommendations did)")
            if check is not None:
                check()
            await self.poll()
            await asyncio.sleep(0)


@dataclass(frozen=True)
class StreamRun:
    """One replay through the real pipeline, as its reader and the online counters saw it."""

    clicks: int
    recommended: int  # distinct recommendations received
    seconds: float  # from the first click sent to the last recommendation received
    serving_s: float  # from the first recommendation received to the last: the workers at work, start-up excluded
    online: Counts  # the workers' online counters at the end
    versions: list[str]  # promoted model versions, newest first

    @property
    def clicks_per_s(self) -> float:
        """Recommendations per second while the workers served (with a replay at full speed, what they can do)."""
        return (self.recommended - 1) / self.serving_s if self.serving_s > 0 else 0.0


async def run_stream(settings: Settings, frame: pd.DataFrame, pacing: Pacing, *, workers: int = 1, trainer: bool = False,
                     timeout_s: float = 600.0, on_poll: Callable[[int, RedisStore], Awaitable[None]] | None = None) -> StreamRun:
    """Start the workers (and the trainer), replay ``frame``, wait for every recommendation, stop them all.

    ``on_poll(received, store)`` runs after each poll of the recommendations, for a live view.
    """
    procs = [WorkerProcess(settings, f"worker-{i}") for i in range(workers)]
    if trainer:
        procs.append(WorkerProcess(settings, "trainer", command="trainer"))

    def check() -> None:
        for proc in procs:
            proc.check()

    store = await RedisStore.open(settings)
    try:
        async with RecommendationReader(settings) as reader:
            started = time.monotonic()
            sending = asyncio.create_task(replay(frame, topic=settings.clicks_topic, kafka=settings, pacing=pacing, progress=False))
            first = last = None
            while len(reader.received) < len(frame):
                if time.monotonic() - started > timeout_s:
                    raise TimeoutError(f"only {len(reader.received):,} of {len(frame):,} recommendations within {timeout_s:.0f} s")
                if sending.done():
                    sending.result()  # a failed replay ends the run with its error
                check()
                if await reader.poll(timeout_ms=250):
                    last = time.monotonic()
                    first = first or last
                if on_poll is not None:
                    await on_poll(len(reader.received), store)
            await sending
            while (online := await store.metrics.total()).clicks + online.duplicates < len(frame):  # the last counters land just after
                if time.monotonic() - started > timeout_s:
                    raise TimeoutError(f"only {online.clicks:,} of {len(frame):,} clicks applied within {timeout_s:.0f} s")
                check()
                await asyncio.sleep(0.1)
            versions = await store.registry.history()
    finally:
        for proc in procs:
            proc.stop()
        await store.close()
    first, last = first or started, last or started
    return StreamRun(len(frame), len(reader.received), last - started, last - first, online, versions)


def wait_for_api(process: WorkerProcess, url: str, timeout_s: float = 60.0) -> None:
    """Return once `sessionrec api` in ``process`` answers /health at ``url``; raise if it dies or never answers."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        process.check()
        try:
            if httpx.get(f"{url}/health", timeout=2.0).is_success:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the API at {url} did not answer within {timeout_s:.0f} s (log: {process.log_path})")
        time.sleep(0.2)
