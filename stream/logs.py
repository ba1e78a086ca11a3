"""How every long-running command logs (worker, trainer, API): one level, one format, one setup.

``text`` is for a person at a terminal; ``json`` writes one JSON object per
line (time, level, logger, message, and the traceback as ``error``) for a log
collector. Both go to stderr, so a command's stdout stays its output.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from sessionrec.stream.settings import Settings

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY = ("aiokafka",)  # libraries whose INFO lines drown ours: warnings only, unless the level is debug


class JsonFormatter(logging.Formatter):
    """One log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(settings: Settings, default_level: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a command whose own level is ``default_level`` (the settings may override it)."""
    level = (settings.log_level or default_level).upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"text": {"format": TEXT}, "json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": settings.log_format}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"level": "NOTSET" if level == "DEBUG" else "WARNING"} for name in CHATTY},
    }


def setup_logging(settings: Settings, default_level: str) -> None:
    """Configure this process's logging as ``logging_config`` says."""
    logging.config.dictConfig(logging_config(settings, default_level))
