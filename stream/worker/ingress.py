"""Clicks from Kafka in micro-batches, for the Faust agent.

Faust's per-event path (conductor, stream iterator, per-event acks) costs
110-180 us of CPU per click on a 2-core machine, more than everything else a
click needs, and caps a worker near 5,500 clicks/s before any work is done;
aiokafka's batch fetch costs under 10 us. So the worker fetches clicks with
aiokafka, in one consumer group shared by all workers (Kafka assigns the
partitions), hands each micro-batch to the agent through a Faust channel, and
commits offsets of batches the agent has finished. At most two batches are in
flight (one processed while the previous one finishes), and a rebalance waits
for both before it commits.

Offsets are committed at most every ``commit_interval_s`` (and on rebalance
and stop), not after every batch: a click redelivered after a crash is
recognised by the offset stored with its session state and skipped, so a
later commit costs only some re-reading, and saves a broker round trip per
micro-batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import faust
import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from sessionrec.replay.kafka.clients import start_client
from sessionrec.stream.worker.processor import Record
from sessionrec.stream.settings import Settings
from sessionrec.replay.kafka.topics import ensure_topics

log = logging.getLogger(__name__)


@dataclass
class MicroBatch:
    records: list[Record]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def settle(self, finishing: asyncio.Task[None]) -> None:
        """Pass on how the batch's finishing ended."""
        if finishing.cancelled():
            self.done.cancel()
        elif finishing.exception() is not None:
            self.done.set_exception(finishing.exception())
        else:
            self.done.set_result(None)


class ClickIngress(mode.Service):
    def __init__(self, settings: Settings, channel: faust.ChannelT, **kwargs) -> None:  # noqa: ANN003 - mode.Service options
        super().__init__(**kwargs)
        self.settings = settings
        self.channel = channel
        self._processed: dict[TopicPartition, int] = {}  # next offset to read, per partition, of finished batches
        self._in_flight: deque[tuple[MicroBatch, dict[TopicPartition, int]]] = deque()
        self._committed_at = 0.0

    async def on_start(self) -> None:
        s = self.settings
        await ensure_topics(s)
        self.consumer = AIOKafkaConsumer(
            **s.kafka_client_kwargs(),
            group_id=s.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.kafka_session_timeout_s * 1000),
            heartbeat_interval_ms=1000,
            max_poll_records=s.batch_size,
            fetch_max_wait_ms=5,  # Tansu holds every fetch for the full wait, even when data arrives; Kafka answers at once
        )
        await start_client(self.consumer, s.kafka_bootstrap)
        self.consumer.subscribe([s.clicks_topic], listener=_CommitOnRevoke(self))

    async def on_stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), timeout=10.0)
        await self.commit()
        await self.consumer.stop()

    async def drain(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` batches are unfinished; finished ones become committable."""
        while self._in_flight and (len(self._in_flight) > keep or self._in_flight[0][0].done.done()):
            batch, offsets = self._in_flight.popleft()
            await batch.done
            self._processed.update(offsets)

    async def commit(self) -> None:
        """Commit the offsets of every finished batch."""
        if self._processed:
            offsets, self._processed = self._processed, {}
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:  # a rebalance moved the partitions on: the next owner re-reads, and skips
                log.warning("committing offsets failed (%s)", exc)
        self._committed_at = time.monotonic()

    @mode.Service.task
    async def _pump(self) -> None:
        wait_ms = int(self.settings.batch_wait_ms)
        while not self.should_stop:
            try:
                fetched = await self.consumer.getmany(timeout_ms=wait_ms, max_records=self.settings.batch_size)
            except KafkaError as exc:
                log.warning("fetching clicks failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            records = [Record(m.partition, m.offset, m.timestamp, m.value) for messages in fetched.values() for m in messages]
            if not records:
                continue
            batch = MicroBatch(records)
            await self.channel.put(batch)
            self._in_flight.append((batch, {tp: messages[-1].offset + 1 for tp, messages in fetched.items()}))
            await self.drain(keep=1)
            if time.monotonic() - self._committed_at >= self.settings.commit_interval_s:
                await self.commit()


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Before partitions move to another worker, their finished batches are committed."""

    def __init__(self, ingress: ClickIngress) -> None:
        self.ingress = ingress

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.ingress.drain()
        await self.ingress.commit()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        pass
