"""Clicks from Kafka in micro-batches, for the Faust agent.

Faust's per-event path (conductor, stream iterator, per-event acks) costs
110-180 us of CPU per click on a 2-core machine, more than everything else a
click needs, and caps a worker near 5,500 clicks/s before any work is done;
aiokafka's batch fetch costs under 10 us. So the worker fetches clicks with
aiokafka, in one consumer group shared by all workers (Kafka assigns the
partitions), admits each micro-batch to the batch line and hands it to the
agent through a Faust channel, and commits the offsets the line says are done
(see stream.worker.batch for the commit protocol).

Offsets are committed at most every ``commit_interval_s`` (and on rebalance
and stop), not after every batch: a click redelivered after a crash is
recognised by the offset stored with its session state and skipped, so a
later commit costs only some re-reading, and saves a broker round trip per
micro-batch.

Before a partition's first click is used after an assignment, its log is
checked: the last record applied from it (stream.redis.partitions) must still
be there. If not, the topic was recreated or the broker lost its log, offsets
started over, and the partition gets a new incarnation, so that its clicks
are not taken for ones already applied.

Once a second the ingress reports the consumer lag of its partitions: to the
worker's Prometheus metrics, and with a heartbeat to Redis for the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib

import faust
import mode
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from sessionrec.replay.kafka.clients import fetch, start_consumer
from sessionrec.replay.kafka.topics import ensure_topics
from sessionrec.stream.redis.partitions import Mark
from sessionrec.stream.settings import Settings
from sessionrec.stream.watch.web import status
from sessionrec.stream.worker import WORKER_ID
from sessionrec.stream.worker.batch import BatchLine
from sessionrec.stream.worker.lag import PartitionLag
from sessionrec.stream.worker.processor import Record
from sessionrec.stream.worker.serving import Serving

log = logging.getLogger(__name__)


class ClickIngress(mode.Service):
    def __init__(self, settings: Settings, serving: Serving, channel: faust.ChannelT, **kwargs) -> None:  # noqa: ANN003 - mode.Service options
        super().__init__(**kwargs)
        self.settings = settings
        self.serving = serving
        self.channel = channel
        self.line: BatchLine | None = None
        self.lag = PartitionLag()
        self._committed_at = 0.0
        self._unchecked: set[TopicPartition] = set()  # assigned partitions whose log is not checked yet
        self._rebalances = 0  # begun so far: a check that one interrupts is void
        self._incarnation: dict[int, int] = {}  # partition -> the incarnation of its log
        self._pumped = asyncio.Event()  # the pump admits no more batches

    async def on_start(self) -> None:
        s = self.settings
        await ensure_topics(s, [s.clicks_topic, s.recs_topic, s.dlq_topic], s.partitions)
        self.consumer = await start_consumer(s, group=s.consumer_group, max_poll_records=s.batch_size,
                                             fetch_wait_ms=5)  # Tansu holds every fetch for the full wait; Kafka answers at once
        self.consumer.subscribe([s.clicks_topic], listener=_CommitOnRevoke(self))

    async def on_stop(self) -> None:
        if self.line is not None:
            with contextlib.suppress(TimeoutError):
                # The pump's last round first: a batch admitted after the final commit would be applied after this worker left
                # the group, while the partition's next owner applies the same clicks.
                await asyncio.wait_for(self._pumped.wait(), timeout=10.0)
                await asyncio.wait_for(self.line.settle(), timeout=10.0)
            await self.commit()
        await self.consumer.stop()

    async def commit(self) -> None:
        """Commit the offsets of every done batch."""
        offsets = self.line.take_offsets() if self.line is not None else {}
        if offsets:
            try:
                await self.consumer.commit(offsets)
                self.lag.committed(offsets)
            except KafkaError as exc:  # a rebalance moved the partitions on: the next owner re-reads, and skips
                log.warning("committing offsets failed (%s)", exc)
        self._committed_at = time.monotonic()

    @mode.Service.task
    async def _pump(self) -> None:
        self.line = line = await self.serving.ready()
        self.serving.metrics.readiness.serving()
        try:
            await self._pump_rounds(line)
        finally:
            self._pumped.set()

    async def _pump_rounds(self, line: BatchLine) -> None:
        wait_ms = int(self.settings.batch_wait_ms)
        while not self.should_stop:
            fetched = await fetch(self.consumer, timeout_ms=wait_ms, max_records=self.settings.batch_size, what="clicks")
            if self._unchecked:
                moved = await self._check_logs()
                # Moved back, or (after a rebalance during the check) unchecked again or gone: they come again, here or elsewhere.
                owned = self.consumer.assignment()
                fetched = {tp: messages for tp, messages in fetched.items() if tp not in moved and tp not in self._unchecked and tp in owned}
            records = [Record(m.partition, m.offset, m.timestamp, m.key, m.value, self._incarnation[m.partition])
                       for messages in fetched.values() for m in messages]
            if records:
                batch = line.admit(records, {tp: messages[-1].offset + 1 for tp, messages in fetched.items()})
                await self.channel.put(batch)
                await line.settle(keep=1)
            else:  # idle: the last batches finish, so their offsets are committed too (and the lag reads 0)
                await line.settle()
            if time.monotonic() - self._committed_at >= self.settings.commit_interval_s:
                await self.commit()

    @mode.Service.timer(1.0)
    async def _beat(self) -> None:
        """This worker's lag to its metrics, and its heartbeat (status and lag) to Redis."""
        if self.line is None:
            return
        try:
            lags = await self.lag.lags(self.consumer)
        except KafkaError as exc:  # the group's committed offset could not be read: next second
            log.warning("reading committed offsets failed (%s)", exc)
            return
        self.serving.metrics.set_lag(self.settings.clicks_topic, lags)
        beat = {**status(self.serving, self.serving.metrics), "partitions": {str(p): lag for p, lag in sorted(lags.items())}}
        try:
            await self.serving.store.workers.beat(WORKER_ID, beat, sum(lags.values()), time.time())
        except (RedisError, OSError) as exc:  # the stream goes on; the dashboard misses a beat
            log.warning("heartbeat to Redis failed (%s)", exc)

    def revoking(self) -> None:
        """A rebalance begins: the positions of the partitions are reset when it ends."""
        self._rebalances += 1

    def assigned(self, partitions: list[TopicPartition]) -> None:
        """Partitions this worker now owns: their logs are checked before their first click is used."""
        self._unchecked.update(partitions)

    async def _check_logs(self) -> set[TopicPartition]:
        """Check every unchecked partition's log; the partitions whose read position moved back to where it was.

        A rebalance during the check ends it, its partition unchecked: a read of
        the mark that the rebalance cut short says nothing of the log (and the
        partition may be another worker's by then); the new assignment is checked afresh.
        """
        partitions, moved, rebalances = self.serving.store.partitions, set(), self._rebalances
        for tp in sorted(self._unchecked, key=lambda tp: tp.partition):
            incarnation = await partitions.incarnation(tp.partition)
            mark = await partitions.mark(tp.partition)
            if mark is not None:
                committed = await self.consumer.committed(tp)
                if self._rebalances != rebalances:
                    break
                moved.add(tp)
                holds = await self._holds(tp, mark)
                if self._rebalances != rebalances:
                    break
                if holds:
                    await self._seek(tp, committed)
                else:  # a new log: every record in it is new, whatever offset the group committed (perhaps against the old one)
                    await self.consumer.seek_to_beginning(tp)
                    incarnation = await partitions.start_over(tp.partition)
                    log.warning("partition %d of %s started over (its last applied click, offset %d, is not in the log): incarnation %d",
                                tp.partition, tp.topic, mark.offset, incarnation)
            self._incarnation[tp.partition] = incarnation
            self._unchecked.discard(tp)
        return moved

    async def _seek(self, tp: TopicPartition, offset: int | None) -> None:
        if offset is None:
            await self.consumer.seek_to_beginning(tp)
        else:
            self.consumer.seek(tp, offset)

    async def _holds(self, tp: TopicPartition, mark: Mark) -> bool:
        """Whether the log still holds the record ``mark`` names (or has moved past it by retention); moves the read position."""
        self.consumer.seek(tp, mark.offset)
        found = (await self.consumer.getmany(tp, timeout_ms=3000, max_records=1)).get(tp, [])
        if not found:
            return False  # the log ends before the mark
        record = found[0]
        if record.offset > mark.offset:
            return True  # retention removed the mark; the log went on
        return record.offset == mark.offset and Mark(record.offset, record.timestamp, zlib.crc32(record.value or b"")) == mark


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Before partitions move to another worker, their done batches are committed; new ones get their log checked."""

    def __init__(self, ingress: ClickIngress) -> None:
        self.ingress = ingress

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.ingress.revoking()
        if self.ingress.line is not None:
            await self.ingress.line.settle()
        await self.ingress.commit()
        self.ingress.lag.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.ingress.assigned(assigned)
