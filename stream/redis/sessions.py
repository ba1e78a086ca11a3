"""Per-session state in Redis: one key per session, one packed value, one TTL.

The hidden state and the offset of the click that produced it live in the same
value, so they are written together or not at all (DESIGN rule 2). The value
also carries the model version the state was computed with (rule 4), the event
time of the last click (rule 3) and when it reached Kafka (what the API's age
of a list counts from), the recent items (bounded) and how many of them came
since the state last started fresh, and the last recommendation list (rule 6).
A value that cannot be read is a missing state (rule 8): one of an older
layout too, so such sessions start fresh once after an upgrade.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from redis.asyncio import Redis

from sessionrec.stream.redis.keys import Keys

_HEADER = struct.Struct("<16siIqddHHHH")  # version, partition, incarnation, offset, ts, click_time, len(hidden), len(history), segment, len(recs)


@dataclass(slots=True)
class SessionState:
    version: str  # of the model that computed ``hidden``
    partition: int  # where the last applied click came from
    incarnation: int  # of that partition's log (a recreated topic or a reset broker starts a new one, offsets over)
    offset: int
    ts: float  # its event time
    click_time: float  # when it reached Kafka (its record timestamp), unix seconds
    hidden: np.ndarray  # float32 [H]
    history: np.ndarray  # int32 item indices, oldest first, at most history_len; kept across pauses
    segment: int  # how many of the last history items came since the state last started fresh: what rebuilds it
    recs: np.ndarray  # int32 item indices of the last recommendation, best first

    def already_applied(self, partition: int, incarnation: int, offset: int) -> bool:
        """A redelivered click: same partition and log, not after the last applied offset."""
        return partition == self.partition and incarnation == self.incarnation and offset <= self.offset

    def encode(self) -> bytes:
        hidden = np.ascontiguousarray(self.hidden, dtype=np.float32)
        history = np.ascontiguousarray(self.history, dtype=np.int32)
        recs = np.ascontiguousarray(self.recs, dtype=np.int32)
        header = _HEADER.pack(self.version.encode(), self.partition, self.incarnation, self.offset, self.ts, self.click_time, len(hidden), len(history),
                              self.segment, len(recs))
        return header + hidden.tobytes() + history.tobytes() + recs.tobytes()

    @classmethod
    def decode(cls, blob: bytes) -> SessionState:
        """The state a value holds; ValueError for one that is not a whole state (truncated, garbage, another format)."""
        try:
            version, partition, incarnation, offset, ts, click_time, n_hidden, n_history, segment, n_recs = _HEADER.unpack_from(blob)
            name = version.rstrip(b"\0").decode("ascii")
        except (struct.error, UnicodeDecodeError) as exc:
            raise ValueError(f"not a session state ({exc})") from None
        if len(blob) != _HEADER.size + 4 * (n_hidden + n_history + n_recs) or segment > n_history or not np.isfinite(ts):
            raise ValueError(f"not a session state ({len(blob)} bytes for {n_hidden}+{n_history}+{n_recs} values)")
        start = _HEADER.size
        hidden = np.frombuffer(blob, np.float32, n_hidden, start)
        start += 4 * n_hidden
        history = np.frombuffer(blob, np.int32, n_history, start)
        recs = np.frombuffer(blob, np.int32, n_recs, start + 4 * n_history)
        return cls(name, partition, incarnation, offset, ts, click_time, hidden, history, segment, recs)


@dataclass
class Loaded:
    states: dict[str, SessionState | None]
    unreadable: list[str]  # sessions whose stored value was not a state: they start fresh


class SessionStore:
    """Reads the states of a micro-batch's sessions at once: one MGET per partition's slot, side by side (written by stream.redis.commit).

    A cluster client pipelines no MGET, so they are concurrent calls instead.
    """

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def load(self, sessions: Mapping[str, int]) -> Loaded:
        """The states of ``sessions`` (session id -> its partition)."""
        by_partition: dict[int, list[str]] = {}
        for name, partition in sessions.items():
            by_partition.setdefault(partition, []).append(name)
        loaded = Loaded({}, [])
        found = await asyncio.gather(*(self.redis.mget([self.keys.session(s, p) for s in names]) for p, names in by_partition.items()))
        for names, blobs in zip(by_partition.values(), found):
            for name, blob in zip(names, blobs):
                loaded.states[name] = _decoded(blob, name, loaded.unreadable)
        return loaded


def _decoded(blob: bytes | None, name: str, unreadable: list[str]) -> SessionState | None:
    if not blob:
        return None
    try:
        return SessionState.decode(blob)
    except ValueError:
        unreadable.append(name)
        return None
