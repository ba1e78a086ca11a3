"""A micro-batch's life, from fetched records to committed offsets, and the line of batches in flight.

The commit protocol, step by step (compare quix-streams' ``Checkpoint.commit``):

1. **Fetched.** The ingress takes one ``getmany`` (at most ``batch_size``
   records) and admits it to the line, which keeps batches in fetch order.
2. **Processed** (the Faust agent). The records are parsed (invalid ones become
   dead letters), their items get indices in the shared vocabulary, and their
   sessions' states are loaded: from memory when an earlier batch changed them
   and has not committed yet, else from Redis. The processor applies the clicks.
3. **Sent.** The recommendations and dead letters are handed to the producer.
   The next batch may now be processed while this one finishes.
4. **Delivered.** The broker acknowledged every record of steps 3 (acks=all):
   output is at-least-once, de-duplicable by (partition, offset). Each
   click's latency (produced → its recommendation acknowledged) is known now.
5. **Committed.** After 4, and after the previous batch's 5, one Redis script
   per partition of the batch writes that partition's changed states, each
   with the offset of the click that made it, and its online counters with
   the latency histogram (stream.redis.commit). State is effectively-once: a
   click redelivered later finds its offset in its session's state and
   changes nothing. The worker's Prometheus metrics count the batch once it
   is committed.
6. **Done.** The batch's next offsets become committable to Kafka once every
   earlier batch is done too; the ingress commits them at most every
   ``commit_interval_s``, before a rebalance and on stop. Until then a crash
   only means re-reading clicks that step 5 will skip.

A Redis outage in 2 or 5 is waited out (retried with backoff); any other
failure fails the batch and every later one, so no offset past it is
committed and all of them are redelivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from aiokafka import TopicPartition
from redis.exceptions import RedisError

from sessionrec.model.config import ServingConfig
from sessionrec.model.neighbours import Increments
from sessionrec.replay.kafka.sender import BatchSender
from sessionrec.stream.redis.commit import Share
from sessionrec.stream.redis.connection import RedisForgot
from sessionrec.stream.redis.latency import Latency
from sessionrec.stream.redis.metrics import Counts
from sessionrec.stream.redis.sessions import SessionState
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.prometheus import WorkerMetrics
from sessionrec.stream.worker import WORKER_ID
from sessionrec.stream.worker.inference import Engine
from sessionrec.stream.worker.processor import Outcome, Record, apply_clicks, encode, parse_batch, shown_items

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(eq=False)
class MicroBatch:
    records: list[Record]
    next_offsets: dict[TopicPartition, int]  # per partition: the offset after the batch's last record
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())  # step 5 finished


@dataclass
class Computed:
    """Steps 2's result: what to send, and what step 5 writes."""

    outcome: Outcome
    recommendations: list[tuple[bytes, bytes]]  # (key, value) for the recommendations topic
    dead_letters: list[bytes]  # values for the dead-letter topic
    reasons: Counter[str]  # the dead letters by reason code
    produced: dict[int, np.ndarray]  # by partition: when each recommended click reached Kafka, unix seconds
    number: int  # of the commit: a retry of it changes nothing
    epoch: str  # of the vocabulary its indices belong to
    shares: dict[int, Share]  # what step 5 writes, by partition

    @property
    def counts(self) -> Counts:
        return self.outcome.counts

    def latency(self, now: float) -> dict[int, Latency]:
        """Each partition's click → recommendation latencies, the recommendations acknowledged at ``now``."""
        return {partition: Latency.of(now - produced) for partition, produced in self.produced.items()}


class Applier:
    """Steps 2 and 5 against Redis: read and compute a batch, later write it.

    It holds the states of computed batches that are not written yet, so a
    batch computed before the previous one is committed reads that one's
    states, as if it had been. When Redis turns out to have lost its data,
    ``recover`` (the serving service's) seeds it again and returns the engine to
    go on with; a batch computed for the lost data is not written.
    """

    def __init__(self, settings: Settings, store: RedisStore, recover: Callable[[], Awaitable[Engine]] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.recover = recover
        self.unwritten: dict[str, SessionState] = {}  # empty once every computed batch is committed
        self._rules: tuple[str, ServingConfig] | None = None

    async def compute(self, records: list[Record], engine: Engine) -> Computed:
        """Step 2; retried through Redis outages, and once more after Redis lost its data and was seeded again."""
        try:
            return await _retry(lambda: self._compute(records, engine), len(records))
        except RedisForgot as exc:
            engine = await self._recovered(exc)
            return await _retry(lambda: self._compute(records, engine), len(records))

    async def commit(self, computed: Computed, latency: dict[int, Latency]) -> None:
        """Step 5 with each partition's latency histogram; retried through Redis outages. Call in the order the batches were computed."""
        try:
            await _retry(lambda: self.store.commit(computed.number, computed.epoch, computed.shares, latency), len(computed.recommendations))
        except RedisForgot as exc:  # its states, counters and lessons belong to data that is gone
            await self._recovered(exc)
        for session, state in computed.outcome.changed.items():
            if self.unwritten.get(session) is state:  # not overtaken by a later batch
                del self.unwritten[session]

    async def _recovered(self, exc: RedisForgot) -> Engine:
        if self.recover is None:
            raise exc
        log.warning("%s: seeding it again", exc)
        self.unwritten.clear()
        return await self.recover()

    async def _compute(self, records: list[Record], engine: Engine) -> Computed:
        parsed = parse_batch(records, self.settings.max_click_bytes, self.settings.dlq_max_bytes)
        items = await self.store.vocab.indices([c.item for _, c in parsed.clicks])
        sessions = {c.session_id: c.partition for _, c in parsed.clicks}  # a session's clicks come from one partition
        states: dict[str, SessionState | None] = {s: self.unwritten[s] for s in sessions if s in self.unwritten}
        loaded = await self.store.sessions.load({s: p for s, p in sessions.items() if s not in states})
        states.update(loaded.states)
        if loaded.unreadable:
            log.warning("%d stored session state(s) could not be read (first: %r); those sessions start fresh", len(loaded.unreadable), loaded.unreadable[0])
        outcome = apply_clicks(parsed.clicks, items, states, engine, self._serving_rules(engine))
        for partition, dead in parsed.dead_in.items():
            outcome.part(partition).dead_letters += dead
        for session in loaded.unreadable:
            outcome.part(sessions[session]).unreadable += 1
        shown = shown_items(outcome.served)
        names = dict(zip(shown, await self.store.vocab.items(shown)))
        self.unwritten.update(outcome.changed)
        duplicates = outcome.counts.duplicates
        if duplicates >= max(10, len(parsed.clicks) // 2):
            log.warning("%d of %d clicks of a micro-batch were already applied: a redelivery after a crash or a rebalance, "
                        "or a log that started over unnoticed", duplicates, len(parsed.clicks))
        assert self.store.vocab.epoch is not None  # indices() above adopted it
        return Computed(outcome, encode(outcome.served, names, time.time(), WORKER_ID), parsed.dead_letters, parsed.reasons, _produced(outcome),
                        self.store.commit.next_number(), self.store.vocab.epoch, self._shares(records, outcome))

    def _shares(self, records: list[Record], outcome: Outcome) -> dict[int, Share]:
        """The batch split by partition: every partition it read from has a share, at least its last record."""
        shares = {record.partition: Share(mark=record.mark()) for record in records}  # records come in offset order per partition
        for session, state in outcome.changed.items():
            shares[state.partition].states[session] = state
        for partition, counts in outcome.parts.items():
            shares[partition].counts = counts
        if self.settings.learn_online:
            for partition, learned in outcome.learned.items():
                shares[partition].lesson = Increments.concat(learned).to_bytes()
        return shares

    def _serving_rules(self, engine: Engine) -> ServingConfig:
        """The engine's serving rules with the worker's overrides, worked out once per model version."""
        if self._rules is None or self._rules[0] != engine.version:
            self._rules = (engine.version, self.settings.serving_rules(engine.serving))
        return self._rules[1]


class BatchLine:
    """The worker's micro-batches in flight, in fetch order: the one place that knows their order.

    The ingress admits batches and takes committable offsets; the agent
    processes each batch. At most two are in flight: one processed while the
    previous one finishes.
    """

    def __init__(self, applier: Applier, recs: BatchSender, dlq: BatchSender, metrics: WorkerMetrics) -> None:
        self.applier = applier
        self.recs = recs
        self.dlq = dlq
        self.metrics = metrics
        self._in_flight: deque[MicroBatch] = deque()
        self._committable: dict[TopicPartition, int] = {}  # next offset per partition, of done batches
        self._finishing: asyncio.Task[None] | None = None

    # --- the ingress's side ---------------------------------------------------------------------

    def admit(self, records: list[Record], next_offsets: dict[TopicPartition, int]) -> MicroBatch:
        """Step 1."""
        batch = MicroBatch(records, next_offsets)
        self._in_flight.append(batch)
        return batch

    async def settle(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` batches are unfinished; done ones become committable (step 6)."""
        while self._in_flight and (len(self._in_flight) > keep or self._in_flight[0].done.done()):
            batch = self._in_flight.popleft()
            await batch.done  # raises if the batch failed: nothing after it is committed
            self._committable.update(batch.next_offsets)

    def take_offsets(self) -> dict[TopicPartition, int]:
        """The offsets to commit to Kafka now (and forget)."""
        offsets, self._committable = self._committable, {}
        return offsets

    # --- the agent's side -----------------------------------------------------------------------

    async def process(self, batch: MicroBatch, engine: Engine) -> None:
        """Steps 2 and 3 now; 4 and 5 in the background, after the previous batch's 5."""
        try:
            started = time.perf_counter()
            computed = await self.applier.compute(batch.records, engine)
            await self.recs.send(computed.recommendations)
            await self.dlq.send((b"dlq", value) for value in computed.dead_letters)
            finishing = asyncio.create_task(self._finish(computed, self.recs.shipped, self.dlq.shipped, self._finishing, started, len(batch.records)))
        except BaseException as exc:
            batch.done.set_exception(exc)
            raise
        self._finishing = finishing
        finishing.add_done_callback(lambda task: _pass_on(task, batch.done))

    async def _finish(self, computed: Computed, recs: int, dlq: int, previous: asyncio.Task[None] | None, started: float, clicks: int) -> None:
        if previous is not None:
            await previous  # a batch that failed to finish stops every later one: they are redelivered
        await self.recs.flush(until=recs)
        await self.dlq.flush(until=dlq)
        latencies = computed.latency(time.time())
        await self.applier.commit(computed, latencies)
        latency = Latency()
        for part in latencies.values():
            latency.add(part)
        self.metrics.record_batch(clicks=clicks, recommendations=len(computed.recommendations), counts=computed.counts,
                                  scored=computed.outcome.scored, dead_letters=computed.reasons, latency=latency,
                                  seconds=time.perf_counter() - started)


def _produced(outcome: Outcome) -> dict[int, np.ndarray]:
    """By partition: when each click answered reached Kafka, unix seconds."""
    stamps: dict[int, list[int]] = {}
    for served in outcome.served:
        stamps.setdefault(served.click.partition, []).append(served.click.timestamp_ms)
    return {partition: np.array(ms, dtype=np.float64) / 1000.0 for partition, ms in stamps.items()}


async def _retry(action: Callable[[], Awaitable[T]], clicks: int) -> T:
    """On a Redis outage, wait and redo rather than lose the batch."""
    delay = 0.5
    while True:
        try:
            return await action()
        except (RedisError, OSError) as exc:
            log.warning("micro-batch of %d clicks failed (%s); retrying in %.1f s", clicks, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def _pass_on(finishing: asyncio.Task[None], done: asyncio.Future[None]) -> None:
    """How the batch's finishing ended is how the batch ended."""
    if finishing.cancelled():
        done.cancel()
    elif finishing.exception() is not None:
        done.set_exception(finishing.exception())
    else:
        done.set_result(None)
