"""Create the project's topics with the configured partition count.

Brokers that auto-create topics do so with their default partition count
(1 on a stock Apache Kafka, 4 on Tansu), which would cap the workers; creating
the topics up front makes scaling out a matter of partitions and workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from sessionrec.replay.kafka.clients import start_admin
from sessionrec.replay.kafka.connection import KafkaConnection

log = logging.getLogger(__name__)


async def ensure_topics(kafka: KafkaConnection, names: Iterable[str], partitions: int) -> None:
    admin = await start_admin(kafka)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, partitions, 1) for name in names if name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:  # another worker was quicker
                pass
            except KafkaError as exc:
                log.warning("could not create topics %s (%s); relying on the broker's auto-creation", [t.name for t in missing], exc)
    finally:
        await admin.close()
