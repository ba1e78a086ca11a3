"""Create the project's topics with the configured partition count.

Brokers that auto-create topics do so with their default partition count
(1 on a stock Apache Kafka), which would cap the workers at one; creating the
topics up front makes scaling out a matter of partitions and workers.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from sessionrec.replay.kafka.clients import start_client
from sessionrec.stream.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
    await start_client(admin, settings.kafka_bootstrap)
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.clicks_topic, settings.recs_topic, settings.dlq_topic]
        missing = [NewTopic(name, settings.partitions, 1) for name in wanted if name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:  # another worker was quicker
                pass
            except KafkaError as exc:
                log.warning("could not create topics %s (%s); relying on the broker's auto-creation", [t.name for t in missing], exc)
    finally:
        await admin.close()
