"""Click → recommendation latency as a fixed-bucket histogram, counted per micro-batch.

A batch's latencies are binned once (numpy), not observed click by click, and
the bins are added to Redis (beside the online counters, per time bucket, so
the dashboard shows p50/p99 across all workers) and to the worker's
Prometheus histogram. Both use the same bounds, so the two views agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

# Upper bounds, +Inf last: fine around the p99 target (100 ms), and up to a minute for a backlog (a replay at full speed queues clicks in Kafka).
BOUNDS_S = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
FIELDS = tuple(f"lat_ms_le_{b * 1000:g}" for b in BOUNDS_S) + ("lat_ms_le_inf",)  # Redis hash fields: clicks per bucket (not cumulative)
SUM_FIELD = "lat_sum_us"  # integers add up exactly across workers


@dataclass
class Latency:
    buckets: list[int] = field(default_factory=lambda: [0] * len(FIELDS))  # counts per bucket, the last one above every bound
    sum_us: int = 0

    @classmethod
    def of(cls, seconds: np.ndarray) -> Latency:
        """The histogram of these latencies (negative ones, from clocks that disagree, count as 0)."""
        seconds = np.maximum(np.asarray(seconds, dtype=np.float64), 0.0)
        bins = np.bincount(np.searchsorted(BOUNDS_S, seconds, side="left"), minlength=len(FIELDS))
        return cls(bins.tolist(), int(round(float(seconds.sum()) * 1e6)))

    @classmethod
    def from_redis(cls, raw: Mapping[bytes, bytes | int]) -> Latency:
        return cls([int(raw.get(name.encode(), 0)) for name in FIELDS], int(raw.get(SUM_FIELD.encode(), 0)))

    @property
    def count(self) -> int:
        return sum(self.buckets)

    def add(self, other: Latency) -> None:
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets)]
        self.sum_us += other.sum_us

    def fields(self) -> dict[str, int]:
        """The non-zero Redis fields of this histogram."""
        found = {name: n for name, n in zip(FIELDS, self.buckets) if n}
        if self.sum_us:
            found[SUM_FIELD] = self.sum_us
        return found

    def quantile(self, q: float) -> float | None:
        """The q-quantile in seconds, interpolated within its bucket as PromQL's histogram_quantile does; None without data."""
        total = self.count
        if total == 0:
            return None
        rank, below = q * total, 0
        for i, n in enumerate(self.buckets):
            if below + n >= rank and n > 0:
                if i == len(BOUNDS_S):  # above the last bound: that bound is all that is known
                    return BOUNDS_S[-1]
                lower = BOUNDS_S[i - 1] if i else 0.0
                return lower + (BOUNDS_S[i] - lower) * (rank - below) / n
            below += n
        return BOUNDS_S[-1]
