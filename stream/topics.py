"""Create the project's topics with the configured partition count.

Brokers that auto-create topics do so with their default partition count
(1 on a stock Apache Kafka), which would cap the workers at one; creating the
topics up front makes scaling out a matter of partitions and workers.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from stream.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
    try:
        await admin.start()
    except KafkaConnectionError:
        await admin.close()
        raise ConnectionError(f"cannot reach Kafka at {settings.kafka_bootstrap}; is a broker running there?") from None
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
