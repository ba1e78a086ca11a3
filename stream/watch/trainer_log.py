"""What `sessionrec cycles` shows: the trainer's recorded cycles, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings


async def read_cycles(settings: Settings, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` cycle records, or a one-line ConnectionError."""
    return await RedisStore.run(settings, lambda store: store.cycles.recent(limit), "reading the trainer's cycles")


def cycles_table(records: list[dict[str, Any]]) -> Table:
    table = Table(title="sessionrec — trainer cycles, newest first", title_justify="left",
                  caption=None if records else "no cycle recorded yet (is a trainer running on this prefix?)")
    for name in ("when", "decision", "from", "to", "new clicks", "train sessions", "held out", "served MRR@20", "tuned MRR@20", "s"):
        table.add_column(name, justify="left" if name in ("when", "decision", "from", "to") else "right")
    for r in records:
        served, tuned = r.get("served") or {}, r.get("tuned") or {}
        table.add_row(
            datetime.fromtimestamp(r["at"], UTC).strftime("%H:%M:%S"), r["decision"], r.get("parent") or "–", r.get("version") or "–",
            f"{r['new_clicks']:,}", f"{r.get('train_sessions', 0):,}", f"{r.get('valid_sessions', 0):,}",
            _metric(served.get("mrr@20")), _metric(tuned.get("mrr@20")), f"{r.get('seconds', 0.0):.1f}",
        )
    return table


def _metric(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
