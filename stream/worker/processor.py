"""One micro-batch's computation: records, their sessions' states and the model in; states, lists and counts out.

Pure: no Redis, no Kafka (stream.worker.batch does the I/O around it). The
GRU step runs in waves (all first clicks of the batch's sessions as one
batched step, then the second ones, ...: DESIGN rule 1); a click already
applied (offset not after the one its session's state holds) is only counted
(rule 2); a long pause in event time starts a fresh network state, while the
session keeps its items (rule 3); a state of another model version is rebuilt
from the items since its last fresh start (rule 4); each click is scored
against the list made after the previous one before anything learns from it
(rule 6), and that score is counted for the model version that made the list.
What the applied clicks teach the item neighbours is part of the outcome, to
be learned once the batch is committed. Counts and lessons are kept by the
clicks' partition, since each partition's are committed in its own slot
(stream.redis.commit).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from sessionrec.model.config import ServingConfig
from sessionrec.model.neighbours import Increments, increments
from sessionrec.model.scoring import PAD
from sessionrec.stream.redis.metrics import Counts, rank_in
from sessionrec.stream.redis.sessions import SessionState
from sessionrec.stream.worker.clicks import Click, Rejected, dead_letter, parse
from sessionrec.stream.worker.inference import Engine, history_matrix

_EMPTY = np.zeros(0, dtype=np.int32)


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as any transport hands it over."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None  # must be the click's session id: that is what keeps a session in one partition
    value: bytes | None
    incarnation: int = 0  # of the partition's log, as the ingress knows it

    def mark(self) -> str:
        """What identifies this record in its log: offset, timestamp and a checksum of its value."""
        return f"{self.offset},{self.timestamp_ms},{zlib.crc32(self.value or b'')}"


@dataclass
class Parsed:
    clicks: list[tuple[int, Click]]  # (position in the batch, click), in batch order
    dead_letters: list[bytes]  # values for the dead-letter topic
    reasons: Counter[str] = field(default_factory=Counter)  # dead letters by clicks.REASONS code
    dead_in: Counter[int] = field(default_factory=Counter)  # dead letters by partition


@dataclass(frozen=True, slots=True)
class Served:
    """One applied click and the state it left, which holds the list recommended after it."""

    position: int  # of the click in the batch, to keep output in input order
    click: Click
    state: SessionState


@dataclass
class Outcome:
    served: list[Served]  # in batch order
    changed: dict[str, SessionState] = field(default_factory=dict)  # the batch's last state of each session it touched
    parts: dict[int, Counts] = field(default_factory=dict)  # everything, all versions together, by the clicks' partition
    scored: dict[str, Counts] = field(default_factory=dict)  # the scoring counters by the model version that made the scored list
    learned: dict[int, list[Increments]] = field(default_factory=dict)  # what the applied clicks teach the item neighbours, by partition

    @property
    def counts(self) -> Counts:
        """Every partition's counts together."""
        total = Counts()
        for part in self.parts.values():
            total.add(part)
        return total

    def part(self, partition: int) -> Counts:
        """The counts of ``partition``'s clicks, to add to."""
        return self.parts.setdefault(partition, Counts())


def parse_batch(records: Sequence[Record], max_click_bytes: int, dlq_max_bytes: int) -> Parsed:
    """Valid clicks, and a dead letter for every record that is not one."""
    out = Parsed([], [])
    for position, record in enumerate(records):
        parsed = parse(record.value, record.partition, record.offset, record.timestamp_ms, max_click_bytes, record.key, record.incarnation)
        if isinstance(parsed, Rejected):
            out.dead_letters.append(dead_letter(parsed, dlq_max_bytes))
            out.reasons[parsed.code] += 1
            out.dead_in[record.partition] += 1
        else:
            out.clicks.append((position, parsed))
    return out


def apply_clicks(clicks: Sequence[tuple[int, Click]], items: Sequence[int], states: Mapping[str, SessionState | None],
                 engine: Engine, rules: ServingConfig) -> Outcome:
    """Apply the clicks (item indices ``items``) to their sessions' ``states`` as of before the batch.

    ``rules`` are the serving rules in force: the engine's own, or the worker's overrides of them.
    """
    current = dict(states)
    outcome = Outcome([])
    for wave in _waves(clicks, items):
        rows = _rows(wave, current, rules.session_timeout, outcome)
        if rows:
            outcome.served += _step(rows, current, engine, rules.history_len, outcome)
    outcome.served.sort(key=lambda served: served.position)
    return outcome


def encode(served: Sequence[Served], names: Mapping[int, str], now: float, worker: str) -> list[tuple[bytes, bytes]]:
    """One recommendation per applied click, in the contract's JSON; ``names`` maps indices to raw item ids, ``worker`` names the sender.

    Item ids go out as text, always (the raw id, as the vocabulary keeps it): a
    consumer never sees one item as ``42`` here and ``"42"`` there.
    """
    return [
        (s.click.session_id.encode(), orjson.dumps({
            "session_id": s.click.session_id,
            "ts": s.click.ts,
            "item_id": names[int(s.state.history[-1])],  # the click answered: lets consumers (the trainer) learn from what was served
            "item_ids": [names[i] for i in s.state.recs.tolist()],
            "model_version": s.state.version,
            "partition": s.click.partition,
            "offset": s.click.offset,
            "click_time": s.click.timestamp_ms / 1000.0,  # when the click was produced
            "served_at": now,  # when this recommendation was computed
            "worker": worker,  # which process computed it: a consumer can tell who served a partition across a rebalance
        }))
        for s in served
    ]


def shown_items(served: Sequence[Served]) -> list[int]:
    """Every item index the recommendations of ``served`` name: what ``encode`` needs named."""
    if not served:
        return []
    return np.unique(np.concatenate([np.stack([s.state.recs for s in served]).ravel(), [s.state.history[-1] for s in served]])).tolist()


# --- internals ---------------------------------------------------------------------------------


@dataclass
class _Row:
    """One click to apply, and what the state before it says."""

    position: int
    click: Click
    item: int
    state: SessionState | None
    fresh: bool


def _segment(state: SessionState) -> np.ndarray:
    """The items since the state last started fresh: what its network state was computed from."""
    return state.history[len(state.history) - state.segment :]


def _waves(clicks: Sequence[tuple[int, Click]], items: Sequence[int]) -> list[list[tuple[int, Click, int]]]:
    """Split a batch so that no wave holds two clicks of one session, keeping their order."""
    seen: dict[str, int] = {}
    waves: list[list[tuple[int, Click, int]]] = []
    for (position, click), item in zip(clicks, items):
        wave = seen.get(click.session_id, 0)
        seen[click.session_id] = wave + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append((position, click, item))
    return waves


def _rows(wave: list[tuple[int, Click, int]], states: Mapping[str, SessionState | None], timeout: float, outcome: Outcome) -> list[_Row]:
    rows = []
    for position, click, item in wave:
        state = states[click.session_id]
        if state is not None and state.already_applied(click.partition, click.incarnation, click.offset):
            outcome.part(click.partition).duplicates += 1
            continue
        if state is not None:  # scored once, counted for the click's partition and for the version that made the list
            rank = rank_in(state.recs.tolist(), item)
            outcome.part(click.partition).count(rank)
            outcome.scored.setdefault(state.version, Counts()).count(rank)
        fresh = state is None or (timeout > 0 and click.ts - state.ts > timeout)
        rows.append(_Row(position, click, item, state, fresh))
    return rows


def _step(rows: list[_Row], states: dict[str, SessionState | None], engine: Engine, length: int, outcome: Outcome) -> list[Served]:
    hidden = np.zeros((len(rows), engine.hidden_size), dtype=np.float32)
    stale = [i for i, r in enumerate(rows) if not r.fresh and r.state.version != engine.version]
    if stale:
        hidden[stale] = engine.rebuild(history_matrix([_segment(rows[i].state) for i in stale], length))
    for i, row in enumerate(rows):
        if not row.fresh and row.state.version == engine.version:
            hidden[i] = row.state.hidden
        counts = outcome.part(row.click.partition)
        counts.recomputed += not row.fresh and row.state.version != engine.version
        counts.fresh += row.fresh
        counts.clicks += 1
    items = np.fromiter((r.item for r in rows), dtype=np.int64, count=len(rows))
    matrix = history_matrix([_EMPTY if r.state is None else r.state.history for r in rows], length)  # kept across pauses
    matrix[:, :-1], matrix[:, -1] = matrix[:, 1:], items  # each row's history, now ending with this click
    kept = (matrix != PAD).sum(axis=1)
    now = np.fromiter((r.click.ts for r in rows), dtype=np.float64, count=len(rows))
    new_hidden, recs = engine.step(hidden, items, matrix, now)
    if engine.neighbours is not None:
        partitions = np.fromiter((r.click.partition for r in rows), dtype=np.int64, count=len(rows))
        for partition in np.unique(partitions).tolist():
            mine = partitions == partition
            outcome.learned.setdefault(partition, []).append(increments(matrix[mine], now[mine], engine.neighbours.rules.window))
    served = []
    for i, row in enumerate(rows):
        c = row.click
        segment = 1 if row.fresh else min(row.state.segment + 1, int(kept[i]))
        state = SessionState(engine.version, c.partition, c.incarnation, c.offset, c.ts, c.timestamp_ms / 1000.0, new_hidden[i],
                             matrix[i, length - kept[i] :], segment,
                             recs[i].astype(np.int32))
        states[c.session_id] = outcome.changed[c.session_id] = state
        served.append(Served(row.position, c, state))
    return served
