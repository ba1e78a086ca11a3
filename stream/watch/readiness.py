"""Whether a worker is doing its job, for `/ready` and an orchestrator's health check.

`/status` only says the process answers HTTP. A worker can answer and still
be useless: stalled with clicks waiting (a batch that never finishes), or
skipping nearly everything as already applied (offsets reset, or a log that
started over unnoticed). Readiness fails in both cases, with the reason.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sessionrec.stream.settings import Settings

WINDOW_S = 60.0  # the recent batches the duplicate share is taken over
MIN_CLICKS = 200  # fewer recent clicks than this say nothing about the share


@dataclass
class Readiness:
    stall_s: float = Settings.ready_stall_s  # no batch finished for this long while clicks wait: stalled
    max_duplicate_share: float = Settings.ready_max_duplicate_share  # of the recent clicks skipped as already applied
    clock: Callable[[], float] = time.monotonic
    serving_since: float | None = None  # when the worker took its first batch of clicks (None: starting)
    last_batch: float | None = None
    waiting: int = 0  # clicks after the committed offsets, from the last lag reading
    _recent: deque[tuple[float, int, int]] = field(default_factory=deque)  # (time, clicks, duplicates) per finished batch

    def serving(self) -> None:
        """The model is loaded and the ingress is fetching."""
        if self.serving_since is None:
            self.serving_since = self.clock()

    def batch(self, clicks: int, duplicates: int) -> None:
        now = self.last_batch = self.clock()
        self._recent.append((now, clicks, duplicates))
        while self._recent and self._recent[0][0] < now - WINDOW_S:
            self._recent.popleft()

    def lag(self, waiting: int) -> None:
        self.waiting = waiting

    def problems(self) -> list[str]:
        """Why the worker is not ready; empty when it is."""
        now = self.clock()
        if self.serving_since is None:
            return ["starting: no model loaded or no partition fetched yet"]
        found = []
        quiet_s = now - (self.last_batch if self.last_batch is not None else self.serving_since)
        if self.waiting > 0 and quiet_s > self.stall_s:
            found.append(f"stalled: no micro-batch finished for {quiet_s:.0f} s while {self.waiting:,} clicks wait")
        recent = [(c, d) for t, c, d in self._recent if t >= now - WINDOW_S]
        clicks, duplicates = sum(c for c, _ in recent), sum(d for _, d in recent)
        if clicks >= MIN_CLICKS and duplicates > self.max_duplicate_share * clicks:
            found.append(f"skipping: {duplicates:,} of the last {clicks:,} clicks were taken as already applied "
                         f"(offsets reset, or a log that started over unnoticed)")
        return found
