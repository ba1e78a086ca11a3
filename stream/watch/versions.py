"""What `sessionrec models` shows and does: the registry's kept versions, and moving its pointer.

Reads and writes Redis only. A move (rollback, pin) takes effect when the
workers next poll the pointer (every second; they swap engines between
micro-batches, so no click waits or is dropped); the command then watches the
workers' heartbeats until every live worker serves the version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from rich.table import Table

from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Version:
    """A kept version: its metadata and how it last became current."""

    version: str
    meta: dict[str, Any]
    current: bool
    pinned: bool
    event: dict[str, Any] | None  # the newest pointer move to it: at, event, previous

    @property
    def held_out(self) -> dict[str, Any]:
        """The trainer's gate figures (served and tuned HR@20, MRR@20), empty for a version that did not come from it."""
        return (self.meta.get("metrics") or {}).get("held_out") or {}

    def to_dict(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.meta.items() if k != "config"}
        return {**meta, "current": self.current, "pinned": self.pinned, "event": self.event}


async def in_registry(settings: Settings, work: Callable[[RedisStore], Awaitable[T]]) -> T:
    """Run ``work`` on the store; a Redis failure is a one-line ConnectionError."""
    return await RedisStore.run(settings, work, "the model registry")


async def kept_versions(store: RedisStore) -> list[Version]:
    """Every kept version, the most recently current first."""
    registry = store.registry
    current, pinned, events = await registry.current(), await registry.pinned(), await registry.events()
    versions = []
    for version in await registry.history():
        try:
            meta = await registry.meta(version)
        except LookupError:  # trimmed meanwhile
            continue
        event = next((e for e in events if e["version"] == version and e["event"] != "unpinned"), None)
        versions.append(Version(version, meta, version == current, version == pinned, event))
    return versions


def rollback_target(versions: list[Version], wanted: str | None) -> str:
    """The version to roll back to: ``wanted``, or the current version's parent while it is kept."""
    if wanted is not None:
        return wanted
    current = next((v for v in versions if v.current), None)
    if current is None:
        raise LookupError("the registry has no current model yet")
    parent = current.meta.get("parent")
    if parent is None or parent not in {v.version for v in versions}:
        others = ", ".join(v.version for v in versions if not v.current) or "none"
        raise LookupError(f"the parent of {current.version} is not kept; name a version to roll back to (kept: {others})")
    return parent


async def wait_served(store: RedisStore, version: str, timeout_s: float) -> tuple[int, int]:
    """Wait until every live worker's heartbeat names ``version``; returns (workers serving it, live workers)."""
    deadline = time.monotonic() + timeout_s
    while True:
        live = await store.workers.live(time.time())
        serving = sum(status.get("model_version") == version for status in live)
        if serving == len(live) or time.monotonic() > deadline:
            return serving, len(live)
        await asyncio.sleep(0.25)


def versions_table(versions: list[Version]) -> Table:
    table = Table(title="sessionrec — model versions, the most recently current first", title_justify="left",
                  caption=None if versions else "no model in the registry yet (is a worker running on this prefix?)")
    for name in ("", "version", "parent", "created", "became current", "how", "held-out MRR@20", "held-out HR@20", "trained on"):
        table.add_column(name, justify="right" if name.startswith(("held-out", "trained")) else "left", no_wrap=name in ("version", "parent"))
    for v in versions:
        held = v.held_out
        served, tuned = held.get("served") or {}, held.get("tuned") or {}
        data = v.meta.get("data") or {}
        table.add_row(
            "current, pinned" if v.current and v.pinned else "current" if v.current else "",
            v.version, v.meta.get("parent") or "–", _when(v.meta.get("created")), _when((v.event or {}).get("at")),
            (v.event or {}).get("event", "–"), _change(served.get("mrr@20"), tuned.get("mrr@20")), _change(served.get("hr@20"), tuned.get("hr@20")),
            f"{data['sessions']:,} sessions" if isinstance(data.get("sessions"), int) else "–",
        )
    return table


def version_lines(v: Version) -> list[str]:
    """One version in detail, as lines of text."""
    meta, config = v.meta, v.meta.get("config") or {}
    state = "current, pinned" if v.current and v.pinned else "current" if v.current else "kept"
    lines = [f"model {v.version} ({state})", f"  parent          {meta.get('parent') or '–'}", f"  created         {_when(meta.get('created'))}",
             f"  items           {meta.get('n_items', '–'):,} learned, vocabulary {meta.get('vocab_size', '–'):,}"]
    if v.event:
        lines.append(f"  became current  {_when(v.event.get('at'))} ({v.event.get('event')}, replacing {v.event.get('previous') or '–'})")
    network = config.get("network") or {}
    if network:
        lines.append(f"  network         layers {network.get('layers')}, loss {config.get('loss', '–')}")
    for name, value in (meta.get("data") or {}).items():
        lines.append(f"  data.{name:<11} {value}")
    held = v.held_out
    if held:
        served, tuned = held.get("served") or {}, held.get("tuned") or {}
        lines.append(f"  held out        {held.get('sessions', '–'):,} sessions: MRR@20 {_change(served.get('mrr@20'), tuned.get('mrr@20'))}, "
                     f"HR@20 {_change(served.get('hr@20'), tuned.get('hr@20'))} (parent → this)")
    return lines


def _change(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "–"
    return f"{before:.4f} → {after:.4f}"


def _when(at: float | None) -> str:
    return "–" if not at else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")
