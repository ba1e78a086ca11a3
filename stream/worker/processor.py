"""One micro-batch of clicks in, one recommendation per click out.

Per batch: one Redis read of the session states, the GRU step in waves (all
first clicks of the batch's sessions as one batched step, then the second
ones, ...: DESIGN rule 1), top-k over all items, and a ``commit`` that writes
the states with their offsets and the online counters in one atomic Redis
script (rule 2). The caller sends the recommendations first and commits
after, so output is at-least-once and state effectively-once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson
from redis.asyncio import Redis

from sessionrec.model.scoring import PAD
from sessionrec.stream.worker.clicks import Click, Rejected, dead_letter, parse
from sessionrec.stream.worker.inference import Engine, history_matrix
from sessionrec.stream.redis.keys import Keys
from sessionrec.stream.redis.metrics import Counts, OnlineMetrics
from sessionrec.stream.settings import Settings
from sessionrec.stream.redis.sessions import SessionState
from sessionrec.stream.redis.vocabulary import SharedVocabulary

# KEYS: session keys..., metrics total, metrics bucket. ARGV: ttl, bucket ttl, the state blobs
# concatenated, their lengths (comma-separated), then (name, value) pairs of counters.
# One argument for all blobs keeps the client's per-argument packing off the hot path.
_COMMIT = """
local ttl, bucket_ttl, blobs = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local sessions = #KEYS - 2
local at, i = 1, 0
for length in string.gmatch(ARGV[4], '%d+') do
  i = i + 1
  local stop = at + tonumber(length)
  redis.call('SET', KEYS[i], string.sub(blobs, at, stop - 1), 'EX', ttl)
  at = stop
end
for j = 5, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[sessions + 1], ARGV[j], ARGV[j + 1])
  redis.call('HINCRBY', KEYS[sessions + 2], ARGV[j], ARGV[j + 1])
end
if #ARGV > 4 then redis.call('EXPIRE', KEYS[sessions + 2], bucket_ttl) end
return i
"""


_EMPTY = np.zeros(0, dtype=np.int32)


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as any transport hands it over."""

    partition: int
    offset: int
    timestamp_ms: int
    value: bytes | None


@dataclass
class Outcome:
    recommendations: list[tuple[bytes, bytes]]  # (key, value) for the recommendations topic
    dead_letters: list[bytes]  # values for the dead-letter topic
    counts: Counts
    commit: Callable[[], Awaitable[None]]  # write states and counters; call after the sends succeeded


@dataclass
class _Row:
    """One click to apply, and what the state before it says."""

    click: Click
    item: int
    state: SessionState | None
    fresh: bool
    position: int  # of the click in the batch, to keep output in input order


@dataclass
class _Batch:
    states: dict[str, SessionState | None]
    changed: dict[str, SessionState] = field(default_factory=dict)


class Processor:
    def __init__(self, settings: Settings, redis: Redis, vocab: SharedVocabulary, metrics: OnlineMetrics, keys: Keys) -> None:
        self.settings = settings
        self.redis = redis
        self.vocab = vocab
        self.metrics = metrics
        self.keys = keys
        self._commit = redis.register_script(_COMMIT)
        self._unwritten: dict[str, SessionState] = {}  # states of processed batches whose commit has not finished

    async def process(self, records: Sequence[Record], engine: Engine) -> Outcome:
        counts = Counts()
        clicks: list[tuple[int, Click]] = []
        dead: list[bytes] = []
        for position, record in enumerate(records):
            parsed = parse(record.value, record.partition, record.offset, record.timestamp_ms, self.settings.max_click_bytes)
            if isinstance(parsed, Rejected):
                dead.append(dead_letter(parsed, self.settings.dlq_max_bytes))
            else:
                clicks.append((position, parsed))
        counts.dead_letters = len(dead)
        items = await self.vocab.indices([c.item for _, c in clicks])
        batch = await self._load({c.session_id for _, c in clicks})
        outputs: list[tuple[int, Click, SessionState]] = []
        for wave in _waves(clicks, items):
            rows = self._rows(wave, batch, counts)
            if rows:
                outputs += self._apply(rows, batch, engine, counts)
        outputs.sort(key=lambda out: out[0])
        recommendations = await self._encode(outputs)
        self._unwritten.update(batch.changed)  # the next batch may start before this one is committed

        async def commit() -> None:
            await self._write(batch.changed, counts)
            for session, state in batch.changed.items():
                if self._unwritten.get(session) is state:  # not overtaken by a later batch
                    del self._unwritten[session]

        return Outcome(recommendations, dead, counts, commit)

    async def _load(self, sessions: set[str]) -> _Batch:
        """States as of the last processed batch: uncommitted ones from memory, the rest from Redis."""
        states: dict[str, SessionState | None] = {s: self._unwritten[s] for s in sessions if s in self._unwritten}
        names = [s for s in sessions if s not in states]
        if names:
            blobs = await self.redis.mget([self.keys.session(s) for s in names])
            states.update((s, SessionState.decode(b) if b else None) for s, b in zip(names, blobs))
        return _Batch(states)

    def _rows(self, wave: list[tuple[int, Click, int]], batch: _Batch, counts: Counts) -> list[_Row]:
        rows = []
        timeout = self.settings.session_timeout_s
        for position, click, item in wave:
            state = batch.states[click.session_id]
            if state is not None and state.already_applied(click.partition, click.offset):
                counts.duplicates += 1
                continue
            counts.score(state.recs.tolist() if state is not None else None, item)
            fresh = state is None or (timeout > 0 and click.ts - state.ts > timeout)
            rows.append(_Row(click, item, state, fresh, position))
        return rows

    def _apply(self, rows: list[_Row], batch: _Batch, engine: Engine, counts: Counts) -> list[tuple[int, Click, SessionState]]:
        length = self.settings.history_len
        hidden = np.zeros((len(rows), engine.hidden_size), dtype=np.float32)
        stale = [i for i, r in enumerate(rows) if not r.fresh and r.state.version != engine.version]
        if stale:
            counts.recomputed += len(stale)
            hidden[stale] = engine.rebuild(history_matrix([rows[i].state.history for i in stale], length))
        for i, row in enumerate(rows):
            if not row.fresh and row.state.version == engine.version:
                hidden[i] = row.state.hidden
        counts.fresh += sum(r.fresh for r in rows)
        counts.clicks += len(rows)
        items = np.fromiter((r.item for r in rows), dtype=np.int64, count=len(rows))
        matrix = history_matrix([_EMPTY if r.fresh else r.state.history for r in rows], length)
        matrix[:, :-1], matrix[:, -1] = matrix[:, 1:], items  # each row's history, now ending with this click
        kept = (matrix != PAD).sum(axis=1)
        histories = [matrix[i, length - kept[i] :] for i in range(len(rows))]
        new_hidden, recs = engine.step(hidden, items, matrix)
        out = []
        for i, row in enumerate(rows):
            c = row.click
            state = SessionState(engine.version, c.partition, c.offset, c.ts, new_hidden[i], histories[i], recs[i].astype(np.int32))
            batch.states[c.session_id] = batch.changed[c.session_id] = state
            out.append((row.position, c, state))
        return out

    async def _encode(self, outputs: list[tuple[int, Click, SessionState]]) -> list[tuple[bytes, bytes]]:
        """One recommendation per applied click, in the contract's JSON."""
        if not outputs:
            return []
        shown = np.concatenate([np.stack([s.recs for _, _, s in outputs]).ravel(), [s.history[-1] for _, _, s in outputs]])
        wire = await self.vocab.wire_items(np.unique(shown).tolist())
        now = time.time()
        return [
            (click.session_id.encode(), orjson.dumps({
                "session_id": click.session_id,
                "ts": click.ts,
                "item_id": wire[int(state.history[-1])],  # the click answered: lets consumers (the trainer) learn from what was served
                "item_ids": [wire[i] for i in state.recs.tolist()],
                "model_version": state.version,
                "partition": click.partition,
                "offset": click.offset,
                "click_time": click.timestamp_ms / 1000.0,  # when the click was produced
                "served_at": now,  # when this recommendation was computed
            }))
            for _, click, state in outputs
        ]

    async def _write(self, states: dict[str, SessionState], counts: Counts) -> None:
        blobs = [state.encode() for state in states.values()]
        keys = [self.keys.session(s) for s in states] + [self.keys.metrics_total, self.keys.metrics_bucket(self.metrics.bucket(time.time()))]
        args: list[bytes | str | int] = [self.settings.state_ttl_s, self.metrics.bucket_ttl_s, b"".join(blobs), ",".join(str(len(b)) for b in blobs)]
        for name, value in vars(counts).items():
            if value:
                args += [name, value]
        await self._commit(keys=keys, args=args)


def _waves(clicks: list[tuple[int, Click]], items: list[int]) -> list[list[tuple[int, Click, int]]]:
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
