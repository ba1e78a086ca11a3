"""Running the pipeline from Python: worker processes and a reader of the recommendations.

The demo, the stream benchmark and the end-to-end tests all start real
workers as child processes (configured through SESSIONREC_* variables, as in
production) and read what they emit from Kafka.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sessionrec.replay.kafka.reader import TopicReader
from sessionrec.stream.settings import Settings


class WorkerProcess:
    """`sessionrec worker` (or another long-running command) as a child process, its output in a log file."""

    def __init__(self, settings: Settings, name: str = "worker", command: str = "worker") -> None:
        self.log_path = Path(tempfile.mkdtemp(prefix="sessionrec-")) / f"{name}.log"
        env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "sessionrec.stream.cli", command], env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

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
                self.received[key] = Received(rec, now)
                fresh += 1
        return fresh

    async def wait_for(self, count: int, timeout_s: float, check: Any = None) -> None:
        """Poll until ``count`` distinct recommendations arrived; ``check()`` may raise to give up early."""
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.received)} of {count} recommendations arrived within {timeout_s:.0f} s")
            if check is not None:
                check()
            await self.poll()
            await asyncio.sleep(0)


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
