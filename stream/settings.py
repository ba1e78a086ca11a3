"""All runtime configuration in one object, read from SESSIONREC_* environment variables.

Every field can be set as ``SESSIONREC_<FIELD NAME IN CAPITALS>``, e.g.
``SESSIONREC_KAFKA_BOOTSTRAP=broker:9092`` or ``SESSIONREC_BATCH_SIZE=512``.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sessionrec.model.config import ServingConfig
from sessionrec.replay.kafka.connection import KafkaConnection

PREFIX = "SESSIONREC_"
OTHER_VARIABLES = {"SESSIONREC_DATA"}  # read elsewhere (model.data), not settings
REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
NAMESPACE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings(KafkaConnection):
    """Kafka connection (inherited: kafka_bootstrap, kafka_security_protocol, ...), topics, Redis, worker, trainer."""

    # One deployment's names: a namespace N turns each default name below (topics, app id and so consumer groups, Redis
    # prefix) into N.<name>, so deployments sharing a broker or a Redis never read each other's clicks, states or models.
    namespace: str = ""
    # Kafka topics and the Faust app
    clicks_topic: str = "clicks"
    recs_topic: str = "recommendations"
    dlq_topic: str = "clicks.dlq"
    partitions: int = 4  # of the clicks topic: the ceiling on parallel workers
    app_id: str = "sessionrec"  # Faust app id
    faust_dir: str = "runs/faust"  # Faust's working files

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"  # rediss://:password@host:port/db for TLS with a password
    redis_ssl_ca_certs: str = ""
    redis_prefix: str = "sessionrec"
    redis_cluster: bool = False  # redis_url names a node of a Redis Cluster (keys are laid out in hash slots either way)
    redis_socket_timeout_s: float = 5.0  # a Redis call not answered by then fails (and is retried): a stalled server is noticed
    # worker
    model_dir: str = "runs/model"  # checkpoint that seeds the registry when it is empty
    batch_size: int = 256  # clicks per micro-batch, at most
    batch_wait_ms: float = 20.0  # how long an idle fetch waits for a first click; a batch never waits to fill: it is what has arrived
    commit_interval_s: float = 1.0  # how often consumed offsets are committed (redelivered clicks are skipped by offset)
    top_k: int = 20
    device: str = "auto"  # auto (CUDA when present), cpu or cuda[:N]
    torch_threads: int = 1  # CPU threads for inference; small per-batch ops lose more to contention than they gain
    # Serving rules travel with the model (its checkpoint's config); these override them when set.
    session_timeout_s: float | None = None  # event-time pause that starts a fresh session state [model's: 1800]
    history_len: int | None = None  # recent clicks kept per session [model's: 50]
    state_ttl_s: int = 86400  # wall-clock lifetime of an idle session's state
    dlq_max_bytes: int = 4096  # of the offending payload kept in a dead letter
    max_click_bytes: int = 65536  # larger clicks are rejected
    metrics_bucket_s: int = 10  # width of an online-metrics time bucket
    learn_online: bool = True  # workers learn item neighbours from every answered click (off: the model's own, as trained)
    neighbour_items: int = 100_000  # items with neighbour rows each worker keeps (the least recently updated go first)
    learn_feed_len: int = 5000  # committed batches' lessons (~30 kB each) kept in Redis for workers that start later
    web_port: int = 6066  # the worker's web server (Faust's: /metrics, /status); 0 = none
    web_bind: str = "127.0.0.1"  # of the worker's and the trainer's web servers
    ready_stall_s: float = 30.0  # /ready fails when no micro-batch finished for this long while clicks wait
    ready_max_duplicate_share: float = 0.5  # ... or when more of the last minute's clicks were skipped as already applied
    # the request/response API (sessionrec api)
    api_bind: str = "127.0.0.1"
    api_port: int = 8000
    api_batch_size: int = 64  # POST /recommend lists computed in one engine call, at most
    api_workers: int = 1  # API processes sharing the port, each with its own model copy: one per core to spare
    servers_file: str = "runs/local-servers.json"  # where `sessionrec up` records the servers it started, for `sessionrec down`
    # logging of the long-running commands (worker, trainer, API)
    log_level: str | None = None  # debug, info, warning or error [the command's own: warning for the worker, info otherwise]
    log_format: str = "text"  # text, or json: one JSON object per line
    # trainer: a cycle is due when any of its cadences has passed (0 turns one off) and enough new clicks arrived
    trainer_interval_s: float = 60.0  # wall-clock seconds between cycles
    trainer_every_clicks: int = 0  # answered clicks between cycles: a replay at any speed learns alike
    trainer_every_event_s: float = 0.0  # event-time seconds between cycles
    trainer_min_new_clicks: int = 200  # a cycle needs this many clicks answered since the previous one
    trainer_window: int = 20000  # most recent sessions kept for fine-tuning
    trainer_session_clicks: int = 50  # last clicks kept per session in the window
    trainer_min_sessions: int = 200  # sessions with a click to predict before a fine-tune runs
    trainer_epochs: int = 3
    trainer_threads: int = 1  # torch threads for fine-tuning
    trainer_nice: int = 10  # CPU priority the trainer lowers itself by (0-19): serving comes first
    trainer_holdout: float = 0.2  # newest share of the window's sessions (by start time) that decides on promotion
    trainer_web_port: int = 6067  # the trainer's /metrics; 0 = none

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings the ``SESSIONREC_*`` variables give; a variable that names no setting is warned about."""
        env = os.environ if env is None else env
        _warn_unknown(env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, raw, _TYPES[f.name])
        return replace(cls(**values), **overrides)

    def to_env(self) -> dict[str, str]:
        """These settings as SESSIONREC_* variables, for a child process."""
        return {PREFIX + f.name.upper(): "" if getattr(self, f.name) is None else str(getattr(self, f.name)) for f in fields(self)}

    def __post_init__(self) -> None:
        problems = self.connection_problems()
        if self.namespace:
            if not NAMESPACE.fullmatch(self.namespace):
                problems.append(f"namespace must be 1-100 of A-Z a-z 0-9 . _ - (a Kafka topic's characters), not starting with '.' "
                                f"(got {self.namespace!r})")
            for name, default in _DEFAULT_NAMES.items():
                if getattr(self, name) == default:
                    object.__setattr__(self, name, f"{self.namespace}.{default}")
        at_least_one = ("batch_size", "top_k", "partitions", "metrics_bucket_s", "state_ttl_s", "trainer_window", "trainer_session_clicks",
                        "trainer_epochs", "dlq_max_bytes", "max_click_bytes", "neighbour_items", "learn_feed_len", "api_batch_size",
                        "api_workers")
        problems += [f"{name} must be at least 1 (got {getattr(self, name)})" for name in at_least_one if getattr(self, name) < 1]
        if self.history_len is not None and self.history_len < 1:
            problems.append(f"history_len must be at least 1 (got {self.history_len})")
        if self.session_timeout_s is not None and self.session_timeout_s < 0:
            problems.append(f"session_timeout_s must be >= 0 (got {self.session_timeout_s})")
        if not 1 <= self.api_port <= 65535:
            problems.append(f"api_port must be a TCP port, 1 to 65535 (got {self.api_port})")
        if self.log_level is not None and self.log_level not in LOG_LEVELS:
            problems.append(f"log_level must be one of {', '.join(LOG_LEVELS)} (got {self.log_level!r})")
        if self.log_format not in LOG_FORMATS:
            problems.append(f"log_format must be text or json (got {self.log_format!r})")
        if self.ready_stall_s <= 0:
            problems.append(f"ready_stall_s must be above 0 (got {self.ready_stall_s})")
        if not 0.0 < self.ready_max_duplicate_share <= 1.0:
            problems.append(f"ready_max_duplicate_share must lie in (0, 1] (got {self.ready_max_duplicate_share})")
        if not 0.0 < self.trainer_holdout < 1.0:
            problems.append(f"trainer_holdout must lie between 0 and 1 (got {self.trainer_holdout})")
        if urlsplit(self.redis_url).scheme not in REDIS_SCHEMES:
            problems.append(f"redis_url {self.redis_shown!r} is not a Redis URL (redis://, rediss:// or unix://)")
        if "{" in self.redis_prefix or "}" in self.redis_prefix:
            problems.append(f"redis_prefix must not hold braces, which make the Redis Cluster hash tags of its keys (got {self.redis_prefix!r})")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))

    def in_namespace(self, namespace: str) -> Settings:
        """These settings in ``namespace``, every namespaced name at its default there (fresh names for a run of its own)."""
        return replace(self, namespace=namespace, **_DEFAULT_NAMES)

    def serving_overrides(self) -> dict[str, Any]:
        """The model's serving rules that these settings replace (model.config.ServingConfig names)."""
        chosen = {"session_timeout": self.session_timeout_s, "history_len": self.history_len}
        return {name: value for name, value in chosen.items() if value is not None}

    def serving_rules(self, serving: ServingConfig) -> ServingConfig:
        """A model's serving rules as these settings serve them: what workers, the API, the trainer's gate and the demo's reference apply."""
        return replace(serving, **self.serving_overrides())

    @property
    def consumer_group(self) -> str:
        """The workers' consumer group on the clicks topic."""
        return f"{self.app_id}-workers"

    @property
    def redis_shown(self) -> str:
        """The Redis URL as it may be printed or logged: any password replaced by ***."""
        return redacted(self.redis_url)

    def redis_kwargs(self) -> dict[str, Any]:
        """Extra arguments for redis.asyncio.from_url; the URL carries password and TLS."""
        kwargs: dict[str, Any] = {"socket_timeout": self.redis_socket_timeout_s, "socket_connect_timeout": self.redis_socket_timeout_s}
        if self.redis_ssl_ca_certs:
            kwargs["ssl_ca_certs"] = self.redis_ssl_ca_certs
        return kwargs


def _convert(name: str, raw: str, kind: type) -> Any:
    """The variable's text as the field's type; an optional field reads "" (or "none") as unset."""
    if isinstance(kind, types.UnionType):
        if raw.strip().lower() in ("", "none"):
            return None
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


def redacted(url: str) -> str:
    """``url`` with its password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


def _warn_unknown(env: Mapping[str, str]) -> None:
    known = {PREFIX + f.name.upper() for f in fields(Settings)} | OTHER_VARIABLES
    for name in sorted(n for n in env if n.startswith(PREFIX) and n not in known):
        close = difflib.get_close_matches(name, known, n=1)
        log.warning("%s is not a sessionrec setting and is ignored%s", name, f" (did you mean {close[0]}?)" if close else "")


_TYPES = typing.get_type_hints(Settings)
_DEFAULT_NAMES = {f.name: f.default for f in fields(Settings) if f.name in ("clicks_topic", "recs_topic", "dlq_topic", "app_id", "redis_prefix")}
