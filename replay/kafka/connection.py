"""How to reach the Kafka brokers: the part of the settings every Kafka client of the project is built from.

``stream.settings.Settings`` extends it, so the one settings object read from
the environment is also what ``replay`` and the Kafka factory take, without
``replay`` knowing anything of the stream.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True)
class KafkaConnection:
    kafka_bootstrap: str = "127.0.0.1:9092"  # comma-separated host:port list
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
    kafka_sasl_mechanism: str = ""  # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_session_timeout_s: float = 6.0  # consumer-group session; Tansu answers a join only after half of it
    kafka_request_timeout_s: float = 40.0  # a produce request not answered by then is sent again (the broker is waited out)

    def connection_problems(self) -> list[str]:
        if self.kafka_security_protocol not in SECURITY_PROTOCOLS:
            return [f"kafka_security_protocol {self.kafka_security_protocol!r} is not one of {', '.join(SECURITY_PROTOCOLS)}"]
        return []

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

    def client_kwargs(self) -> dict[str, Any]:
        """Connection arguments for aiokafka producers, consumers and admin clients."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.kafka_bootstrap, "security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            kwargs.update(sasl_mechanism=self.kafka_sasl_mechanism, sasl_plain_username=self.kafka_sasl_username,
                          sasl_plain_password=self.kafka_sasl_password)
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        return kwargs

    def faust_credentials(self) -> Any:
        """SASL/SSL credentials in Faust's terms (None for PLAINTEXT)."""
        import faust

        context = self.ssl_context()
        if self.kafka_sasl_mechanism:
            return faust.SASLCredentials(username=self.kafka_sasl_username, password=self.kafka_sasl_password,
                                         mechanism=self.kafka_sasl_mechanism, ssl_context=context)
        return faust.SSLCredentials(context) if context is not None else None
