"""Starting Kafka clients so that a missing or refusing broker is one line, not a log storm."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError


@contextlib.contextmanager
def quiet(name: str = "aiokafka") -> Iterator[None]:
    """Silence a library's logger while its failure is reported another way."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def start_client(client: Any, bootstrap: str) -> None:
    """Start an aiokafka producer, consumer or admin client, or raise a one-line ConnectionError."""
    try:
        with quiet():  # aiokafka logs the failure at ERROR; the error below says it in one line
            await client.start()
    except KafkaConnectionError:
        await _close(client)
        raise ConnectionError(f"cannot reach Kafka at {bootstrap}; is a broker running there?") from None
    except (KafkaError, OSError) as exc:  # authentication, TLS, protocol
        await _close(client)
        raise ConnectionError(f"cannot connect to Kafka at {bootstrap}: {exc!r}") from None


async def _close(client: Any) -> None:
    await (client.close() if hasattr(client, "close") else client.stop())
