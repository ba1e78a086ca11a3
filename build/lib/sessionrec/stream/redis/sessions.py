"""Per-session state in Redis: one key per session, one packed value, one TTL.

The hidden state and the offset of the click that produced it live in the same
value, so they are written together or not at all (DESIGN rule 2). The value
also carries the model version the state was computed with (rule 4), the event
time of the last click (rule 3), the recent items (bounded) and the last
recommendation list (rule 6).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys

_HEADER = struct.Struct("<16siqdHHH")  # version, partition, offset, ts, len(hidden), len(history), len(recs)


@dataclass(slots=True)
class SessionState:
    version: str  # of the model that computed ``hidden``
    partition: int  # where the last applied click came from
    offset: int
    ts: float  # its event time
    hidden: np.ndarray  # float32 [H]
    history: np.ndarray  # int32 item indices, oldest first, at most history_len
    recs: np.ndarray  # int32 item indices of the last recommendation, best first

    def already_applied(self, partition: int, offset: int) -> bool:
        """A redelivered click: same partition, not after the last applied offset."""
        return partition == self.partition and offset <= self.offset

    def encode(self) -> bytes:
        hidden = np.ascontiguousarray(self.hidden, dtype=np.float32)
        history = np.ascontiguousarray(self.history, dtype=np.int32)
        recs = np.ascontiguousarray(self.recs, dtype=np.int32)
        header = _HEADER.pack(self.version.encode(), self.partition, self.offset, self.ts, len(hidden), len(history), len(recs))
        return header + hidden.tobytes() + history.tobytes() + recs.tobytes()

    @classmethod
    def decode(cls, blob: bytes) -> SessionState:
        version, partition, offset, ts, n_hidden, n_history, n_recs = _HEADER.unpack_from(blob)
        start = _HEADER.size
        hidden = np.frombuffer(blob, np.float32, n_hidden, start)
        start += 4 * n_hidden
        history = np.frombuffer(blob, np.int32, n_history, start)
        recs = np.frombuffer(blob, np.int32, n_recs, start + 4 * n_history)
        return cls(version.rstrip(b"\0").decode(), partition, offset, ts, hidden, history, recs)


class SessionStore:
    """Reads the states of a micro-batch's sessions in one round trip (written by stream.redis.commit)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def load(self, sessions: Iterable[str]) -> dict[str, SessionState | None]:
        names = list(sessions)
        if not names:
            return {}
        blobs = await self.redis.mget([self.keys.session(s) for s in names])
        return {s: SessionState.decode(b) if b else None for s, b in zip(names, blobs)}
