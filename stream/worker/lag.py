"""Consumer lag per partition: the fetch's high watermark minus the group's committed offset.

The high watermark comes with every fetch response (aiokafka's
``highwater``), which Tansu reports correctly, unlike ``end_offsets()``
(DESIGN). The committed offset is the one this worker last committed for the
partition, or, until it has, the group's (asked once per assignment).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition


class PartitionLag:
    def __init__(self) -> None:
        self._committed: dict[TopicPartition, int] = {}

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets this worker has just committed."""
        self._committed.update(offsets)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions that moved to another worker: their offsets are that worker's to know."""
        for tp in partitions:
            self._committed.pop(tp, None)

    async def lags(self, consumer: AIOKafkaConsumer) -> dict[int, int]:
        """Records after the committed offset, per assigned partition that a fetch has reported on."""
        # All at once: a rebalance during an await below may take partitions away (highwater() asserts they are assigned).
        highwaters = {tp: consumer.highwater(tp) for tp in consumer.assignment()}
        lags = {}
        for tp, highwater in highwaters.items():
            if highwater is None:
                continue
            if tp not in self._committed:
                committed = await consumer.committed(tp) or 0  # never committed: the log starts at 0
                if tp not in consumer.assignment():
                    continue  # moved on meanwhile: the offset is the next owner's to know
                self._committed[tp] = committed
            lags[tp.partition] = max(highwater - self._committed[tp], 0)
        return lags
