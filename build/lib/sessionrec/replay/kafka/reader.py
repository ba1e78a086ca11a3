"""Reading a whole topic without a consumer group: every partition, from the beginning.

For readers that must not share or commit offsets (`sessionrec tail`, the
demo's and the bench's view of the recommendations): all partitions are
assigned by hand, so nothing waits for a group join (Tansu answers one only
after half the session timeout) and no offsets are committed for anyone.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from types import TracebackType

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from sessionrec.replay.kafka.clients import fetch, start_consumer
from sessionrec.replay.kafka.connection import KafkaConnection

WAIT_NOTICE_S = 5.0  # tell the user after this long that the topic has not appeared yet


class TopicReader:
    """``async with TopicReader(kafka, topic) as reader: await reader.poll()``."""

    def __init__(self, kafka: KafkaConnection, topic: str, *, fetch_wait_ms: int = 100, max_records: int = 2000,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.kafka = kafka
        self.topic = topic
        self.fetch_wait_ms = fetch_wait_ms  # Tansu holds every fetch this long, data or not
        self.max_records = max_records
        self.on_wait = on_wait
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = await start_consumer(self.kafka, fetch_wait_ms=self.fetch_wait_ms, max_poll_records=self.max_records)
        try:
            partitions = await self._partitions()
            self._consumer.assign(partitions)
            await self._consumer.seek_to_beginning(*partitions)
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> list[ConsumerRecord]:
        """What arrived since the last poll, over all partitions (each in offset order)."""
        assert self._consumer is not None, "use the reader in an `async with` block"
        fetched = await fetch(self._consumer, timeout_ms=timeout_ms, what=f"from {self.topic}", on_retry=self.on_wait)
        return [message for messages in fetched.values() for message in messages]

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the topic, waiting for it to appear.

        Assigning partition 0 makes the client fetch the topic's metadata (a
        broker that auto-creates topics creates it then); the full assignment
        follows once the metadata names the partitions.
        """
        assert self._consumer is not None
        self._consumer.assign([TopicPartition(self.topic, 0)])
        for attempt in itertools.count():
            found = self._consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            if attempt == int(WAIT_NOTICE_S / 0.1) and self.on_wait:
                self.on_wait(f"waiting for topic {self.topic!r} to appear on Kafka at {self.kafka.kafka_bootstrap} ...")
            await asyncio.sleep(0.1)
        raise AssertionError("unreachable")
