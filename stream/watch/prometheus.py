"""What Prometheus scrapes from a worker and from the trainer, named by Prometheus' conventions.

Each process keeps its metrics in a CollectorRegistry of its own, with the
standard process, platform and GC collectors, so nothing else in the process
(Faust, aiokafka, a test) can add to or clash with them.

Accuracy is counted per model version: the version that made the list a
click was scored against. Summed over versions, the counters equal the
online counters in Redis (stream.redis.metrics); HR@k and MRR@20 are rate
ratios, for example

    sum(rate(sessionrec_hits_total{k="20"}[5m])) / sum(rate(sessionrec_scored_clicks_total[5m]))
    sum(rate(sessionrec_reciprocal_rank_total[5m])) / sum(rate(sessionrec_scored_clicks_total[5m]))

A worker keeps the series of its ``KEPT_VERSIONS`` most recently scored
versions (the registry keeps 5), so an endless run of promotions leaves a
bounded label set.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from sessionrec.stream.redis.latency import BOUNDS_S, Latency
from sessionrec.stream.redis.metrics import RR_SCALE, Counts
from sessionrec.stream.watch.readiness import Readiness
from sessionrec.stream.worker.clicks import REASONS

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CYCLE_SECONDS_BUCKETS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000)
KS = (1, 5, 20)
KEPT_VERSIONS = 8
DECISIONS = ("promoted", "kept", "skipped")


def process_registry() -> CollectorRegistry:
    """A registry with the standard process, platform and garbage-collector collectors."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    if GC_COLLECTOR is not None:  # absent on interpreters without gc stats
        GCCollector(registry=registry)
    return registry


class LatencyHistogram(Collector):
    """A Prometheus histogram fed a micro-batch's Latency bins at a time, not one observation per click."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self.total = Latency()
        registry.register(self)

    def add(self, latency: Latency) -> None:
        self.total.add(latency)

    def collect(self) -> Iterator[Metric]:
        cumulative, buckets = 0, []
        for bound, n in zip((*BOUNDS_S, float("inf")), self.total.buckets):
            cumulative += n
            buckets.append((floatToGoString(bound), cumulative))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self.total.sum_us / 1e6)


class WorkerMetrics:
    """One worker's metrics."""

    def __init__(self, readiness: Readiness | None = None) -> None:
        self.readiness = readiness or Readiness()  # fed by the same batches and lag readings
        self.registry = r = process_registry()
        self.clicks = Counter("sessionrec_clicks", "Clicks taken from Kafka and processed by this worker", registry=r)
        self.recommendations = Counter("sessionrec_recommendations", "Recommendation lists sent", registry=r)
        self.dead_letters = Counter("sessionrec_dead_letters", "Clicks rejected to the dead-letter topic, by reason", ["reason"], registry=r)
        for reason in REASONS:
            self.dead_letters.labels(reason)
        self.duplicates = Counter("sessionrec_duplicate_clicks", "Redelivered clicks skipped (already applied)", registry=r)
        self.recomputed = Counter("sessionrec_recomputed_states", "Session states rebuilt for a new model version", registry=r)
        self.unreadable = Counter("sessionrec_unreadable_states", "Stored session states that could not be read (the session started fresh)",
                                  registry=r)
        self.scored = Counter("sessionrec_scored_clicks", "Clicks scored against the list recommended before them, by the version that made it",
                              ["model_version"], registry=r)
        self.hits = Counter("sessionrec_hits", "Scored clicks whose item was in the top k of that list", ["model_version", "k"], registry=r)
        self.reciprocal_rank = Counter("sessionrec_reciprocal_rank", "Sum of 1/rank of the clicked item in the top 20 (0 outside) over scored clicks",
                                       ["model_version"], registry=r)
        self.latency = LatencyHistogram("sessionrec_click_to_recommendation_seconds",
                                        "Seconds from a click reaching Kafka to its recommendation being acknowledged by Kafka", r)
        self.batch_clicks = Histogram("sessionrec_batch_clicks", "Clicks per micro-batch", buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.batch_seconds = Histogram("sessionrec_batch_seconds", "Seconds per micro-batch: Redis read, model, send, commit",
                                       buckets=BATCH_SECONDS_BUCKETS, registry=r)
        self.lag = Gauge("sessionrec_consumer_lag_records", "Records in the partition after the group's committed offset (fetch high watermark "
                         "minus committed offset)", ["topic", "partition"], registry=r)
        self.model = Info("sessionrec_model", "Model version this worker serves, and its device", registry=r)
        self.started = time.time()
        self._model: tuple[str, str] | None = None
        self._versions: OrderedDict[str, None] = OrderedDict()  # labelled versions, least recently scored first
        self._lag_partitions: set[tuple[str, str]] = set()

    def record_batch(self, *, clicks: int, recommendations: int, counts: Counts, scored: Mapping[str, Counts], dead_letters: Mapping[str, int],
                     latency: Latency, seconds: float) -> None:
        """Count one finished micro-batch (call after its commit); ``scored`` holds its scoring counters by model version."""
        self.clicks.inc(clicks)
        self.recommendations.inc(recommendations)
        for reason, n in dead_letters.items():
            self.dead_letters.labels(reason).inc(n)
        self.duplicates.inc(counts.duplicates)
        self.recomputed.inc(counts.recomputed)
        self.unreadable.inc(counts.unreadable)
        for version, c in scored.items():
            self._label(version)
            self.scored.labels(version).inc(c.scored)
            for k, hits in zip(KS, (c.hit1, c.hit5, c.hit20)):
                self.hits.labels(version, str(k)).inc(hits)
            self.reciprocal_rank.labels(version).inc(c.rr20 / RR_SCALE)
        self.latency.add(latency)
        self.batch_clicks.observe(clicks)
        self.batch_seconds.observe(seconds)
        self.readiness.batch(clicks, counts.duplicates)

    def set_lag(self, topic: str, lags: Mapping[int, int]) -> None:
        """The lag of the partitions this worker holds now; partitions it gave up leave the exposition."""
        current = {(topic, str(p)) for p in lags}
        for gone in self._lag_partitions - current:
            self.lag.remove(*gone)
        for partition, lag in lags.items():
            self.lag.labels(topic, str(partition)).set(lag)
        self._lag_partitions = current
        self.readiness.lag(sum(lags.values()))

    def set_model(self, version: str | None, device: str) -> None:
        if version and (version, device) != self._model:
            self.model.info({"version": version, "device": device})
            self._model = (version, device)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def status(self) -> dict[str, Any]:
        return {
            "clicks_processed": int(self.clicks._value.get()),  # noqa: SLF001 - prometheus_client has no public read
            "recommendations_sent": int(self.recommendations._value.get()),  # noqa: SLF001
            "dead_letters": int(sum(self.dead_letters.labels(reason)._value.get() for reason in REASONS)),  # noqa: SLF001
            "uptime_s": round(time.time() - self.started, 3),
        }

    def _label(self, version: str) -> None:
        """Keep ``version``'s series, forgetting the least recently scored version beyond KEPT_VERSIONS."""
        self._versions[version] = None
        self._versions.move_to_end(version)
        while len(self._versions) > KEPT_VERSIONS:
            old, _ = self._versions.popitem(last=False)
            self.scored.remove(old)
            self.reciprocal_rank.remove(old)
            for k in KS:
                self.hits.remove(old, str(k))


class TrainerMetrics:
    """The online trainer's metrics."""

    def __init__(self) -> None:
        self.registry = r = process_registry()
        self.answered = Counter("sessionrec_trainer_answered_clicks", "Answered clicks read from the recommendations topic", registry=r)
        self.cycles = Counter("sessionrec_trainer_cycles", "Fine-tune cycles, by decision", ["decision"], registry=r)
        for decision in DECISIONS:
            self.cycles.labels(decision)
        self.cycle_seconds = Histogram("sessionrec_trainer_cycle_seconds", "Seconds per fine-tune cycle that ran", buckets=CYCLE_SECONDS_BUCKETS,
                                       registry=r)
        self.held_out_mrr = Gauge("sessionrec_trainer_held_out_mrr20", "MRR@20 on the last cycle's held-out sessions", ["model"], registry=r)
        self.window_sessions = Gauge("sessionrec_trainer_window_sessions", "Sessions in the fine-tuning window", registry=r)

    def record_cycle(self, decision: str, seconds: float, served_mrr: float | None, tuned_mrr: float | None) -> None:
        self.cycles.labels(decision).inc()
        if decision != "skipped":
            self.cycle_seconds.observe(seconds)
        for model, value in (("served", served_mrr), ("candidate", tuned_mrr)):
            if value is not None:
                self.held_out_mrr.labels(model).set(value)

    def serve(self, port: int, bind: str) -> None:
        """Expose /metrics on ``bind:port`` from a background thread; a port in use is a one-line ConnectionError."""
        try:
            start_http_server(port, bind, registry=self.registry)
        except OSError as exc:
            raise ConnectionError(f"cannot serve the trainer's metrics on {bind}:{port}: {exc.strerror or exc}") from None
