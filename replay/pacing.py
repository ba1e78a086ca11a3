"""When each click is due: as fast as possible, N× real time, or a fixed rate.

Pure scheduling, no Kafka: :func:`bursts` groups clicks into the bursts that
are due now, sleeping in between. Due times are measured from one monotonic
start, never from the previous send, so delays (a slow broker, a busy event
loop) do not add up; a replay that falls behind catches up in bursts.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar

T = TypeVar("T")

_SPEED = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*[xX×]?\s*")


@dataclass(frozen=True)
class Pacing:
    """``speed`` plays event time N× faster than real time; ``rate`` sends a fixed number of clicks/s.

    Neither means as fast as the broker takes them. Paced clicks leave in
    bursts of what is due within ``tick_s``: a click goes out at most that much
    early, never late. A burst every few milliseconds for minutes (a record
    batch each) left the local Tansu broker busy with no progress, while the
    same rate in 200 ms bursts ran fine; a latency measurement wants a finer tick.
    """

    speed: float | None = None
    rate: float | None = None
    tick_s: float = 0.2

    def __post_init__(self) -> None:
        if self.speed is not None and self.rate is not None:
            raise ValueError("give a speed or a rate, not both")
        for name, value in (("speed", self.speed), ("rate", self.rate)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.tick_s < 0:
            raise ValueError(f"tick_s must be >= 0, got {self.tick_s}")

    def due(self, index: int, event_offset: float) -> float:
        """Seconds after the start at which click ``index`` is due; ``event_offset`` = its ts minus the first ts."""
        if self.rate is not None:
            return index / self.rate
        if self.speed is not None:
            return max(0.0, event_offset / self.speed)
        return 0.0

    def __str__(self) -> str:
        if self.rate is not None:
            return f"{self.rate:g} clicks/s"
        if self.speed is not None:
            return f"{self.speed:g}x real time"
        return "max speed"


def parse_speed(text: str) -> float | None:
    """``max`` → None (unpaced); ``60``, ``60x``, ``0.5x`` → the factor."""
    if text.strip().lower() == "max":
        return None
    match = _SPEED.fullmatch(text)
    if not match or not float(match.group(1)) > 0:
        raise ValueError(f"speed must be 'max' or a positive factor like 60 or 60x, got {text!r}")
    return float(match.group(1))


async def bursts(clicks: Iterable[T], pacing: Pacing, *, event_time: Callable[[T], float] = itemgetter("ts"),
                 max_burst: int = 4096, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> AsyncIterator[list[T]]:
    """Yield lists of clicks that are due, each at most ``max_burst`` long.

    ``event_time`` reads a click's unix time (only used when pacing by speed).

    A click due within ``pacing.tick_s`` goes out with the current burst
    rather than after a sleep. Before sleeping the burst collected so far is
    yielded, so nothing due waits for a later one.
    """
    early = pacing.tick_s
    burst: list[T] = []
    start = clock()
    first_ts: float | None = None
    for index, click in enumerate(clicks):
        ts = float(event_time(click))
        if first_ts is None:
            first_ts = ts
        wait = start + pacing.due(index, ts - first_ts) - clock()
        if wait > early:
            if burst:
                yield burst
                burst = []
                wait = start + pacing.due(index, ts - first_ts) - clock()
            if wait > 0:
                await sleep(wait)
        burst.append(click)
        if len(burst) >= max_burst:
            yield burst
            burst = []
    if burst:
        yield burst
