"""All runtime configuration in one object, read from SESSIONREC_* environment variables.

Every field can be set as ``SESSIONREC_<FIELD NAME IN CAPITALS>``, e.g.
``SESSIONREC_KAFKA_BOOTSTRAP=broker:9092`` or ``SESSIONREC_BATCH_SIZE=512``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

PREFIX = "SESSIONREC_"


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"  # comma-separated host:port list
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
    kafka_sasl_mechanism: str = ""  # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    clicks_topic: str = "clicks"
    recs_topic: str = "recommendations"
    dlq_topic: str = "clicks.dlq"
    partitions: int = 4  # of the clicks topic: the ceiling on parallel workers
    kafka_session_timeout_s: float = 6.0  # consumer-group session; Tansu answers a join only after half of it
    app_id: str = "sessionrec"  # Faust app id
    faust_dir: str = "runs/faust"  # Faust's working files

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"  # rediss://:password@host:port/db for TLS with a password
    redis_ssl_ca_certs: str = ""
    redis_prefix: str = "sessionrec"
    # worker
    model_dir: str = "runs/model"  # checkpoint that seeds the registry when it is empty
    batch_size: int = 256  # clicks per micro-batch, at most
    batch_wait_ms: float = 20.0  # how long a micro-batch waits to fill
    commit_interval_s: float = 1.0  # how often consumed offsets are committed (redelivered clicks are skipped by offset)
    top_k: int = 20
    device: str = "auto"  # auto (CUDA when present), cpu or cuda[:N]
    torch_threads: int = 1  # CPU threads for inference; small per-batch ops lose more to contention than they gain
    session_timeout_s: float = 1800.0  # event-time pause that starts a fresh session state
    state_ttl_s: int = 86400  # wall-clock lifetime of an idle session's state
    history_len: int = 50  # recent clicks kept per session
    dlq_max_bytes: int = 4096  # of the offending payload kept in a dead letter
    max_click_bytes: int = 65536  # larger clicks are rejected
    metrics_bucket_s: int = 10  # width of an online-metrics time bucket
    web_port: int = 6066  # Faust's web server (metrics, dashboard); 0 = none
    web_bind: str = "127.0.0.1"
    # trainer
    trainer_interval_s: float = 60.0
    trainer_window: int = 20000  # most recent sessions kept for fine-tuning
    trainer_min_sessions: int = 200  # sessions with a click to predict before a fine-tune runs
    trainer_epochs: int = 3
    trainer_holdout: float = 0.2  # newest share of the window's sessions that decides on promotion

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, raw, type(getattr(cls, f.name)))
        return replace(cls(**values), **overrides)

    def to_env(self) -> dict[str, str]:
        """These settings as SESSIONREC_* variables, for a child process."""
        return {PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.top_k < 1 or self.history_len < 1 or self.partitions < 1:
            raise SettingsError("batch_size, top_k, history_len and partitions must be at least 1")
        if self.kafka_security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise SettingsError(f"kafka_security_protocol {self.kafka_security_protocol!r} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")

    @property
    def consumer_group(self) -> str:
        """The workers' consumer group on the clicks topic."""
        return f"{self.app_id}-workers"

    @property
    def broker_url(self) -> str:
        """The bootstrap servers as Faust's broker URL."""
        return ";".join(f"kafka://{hostport.strip()}" for hostport in self.kafka_bootstrap.split(","))

    def ssl_context(self) -> ssl.SSLContext | None:
        if "SSL" not in self.kafka_security_protocol:
            return None
        context = ssl.create_default_context(cafile=self.kafka_ssl_cafile or None)
        if self.kafka_ssl_certfile:
            context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile or None)
        return context

    def faust_credentials(self) -> Any:
        """SASL/SSL credentials in Faust's terms (None for PLAINTEXT)."""
        import faust

        context = self.ssl_context()
        if self.kafka_sasl_mechanism:
            return faust.SASLCredentials(username=self.kafka_sasl_username, password=self.kafka_sasl_password,
                                         mechanism=self.kafka_sasl_mechanism, ssl_context=context)
        return faust.SSLCredentials(context) if context is not None else None

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Connection arguments for aiokafka producers and consumers."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.kafka_bootstrap, "security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            kwargs.update(sasl_mechanism=self.kafka_sasl_mechanism, sasl_plain_username=self.kafka_sasl_username, sasl_plain_password=self.kafka_sasl_password)
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        return kwargs

    def redis_kwargs(self) -> dict[str, Any]:
        """Extra arguments for redis.asyncio.from_url; the URL carries password and TLS."""
        return {"ssl_ca_certs": self.redis_ssl_ca_certs} if self.redis_ssl_ca_certs else {}


def _convert(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
