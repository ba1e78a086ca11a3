"""What the API answers from: session states in Redis, and the served model for lists of given items.

It never writes: a session's state is read as the workers left it, and the
items of a POST are looked up in the shared vocabulary without assigning
indices, so a request leaves no trace. The model is the registry's current
one (stream.worker.served, as a worker serves it); its item neighbours follow
the learning feed as a worker's do (``learn_online``), so for the same items
the API ranks as a worker does at that moment.

Lists are computed on the event loop, so learning never overlaps a read, and
in batches: the POSTs that arrive together (all that are waiting when the
loop comes round, up to ``api_batch_size``) share one engine call, as a
micro-batch's clicks do in a worker. One engine call costs about as much for
one list as for a dozen, so at a thousand requests a second this is the
difference between keeping up and falling behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sessionrec.stream.api.models import Recommendation, SessionRecommendations
from sessionrec.stream.redis.keys import partition_of
from sessionrec.stream.redis.store import RedisStore
from sessionrec.stream.settings import Settings
from sessionrec.stream.worker.inference import history_matrix, pick_device
from sessionrec.stream.worker.served import ServedModel

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Ask:
    """One POST waiting for its list."""

    items: np.ndarray  # its known items' indices, oldest first
    now: float  # event time the list is for
    answer: asyncio.Future[tuple[str, np.ndarray]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Recommender:
    def __init__(self, settings: Settings, store: RedisStore, model: ServedModel) -> None:
        self.settings = settings
        self.store = store
        self.model = model
        self._following: asyncio.Task[None] | None = None
        self._waiting: list[_Ask] = []

    @classmethod
    async def start(cls, settings: Settings) -> Recommender:
        """Connect, load the current model (learning what the feed holds), and follow promotions and the feed."""
        torch.set_num_threads(settings.torch_threads)
        store = await RedisStore.open(settings)
        model = ServedModel(settings, store, pick_device(settings.device))
        try:
            engine = await model.start()
        except BaseException:
            await store.close()
            raise
        recommender = cls(settings, store, model)
        recommender._following = asyncio.create_task(model.follow())
        log.info("serving model %s on %s", engine.version, model.device)
        return recommender

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._following
        await self.store.close()

    @property
    def version(self) -> str:
        assert self.model.engine is not None
        return self.model.engine.version

    @property
    def lessons(self) -> int:
        return self.model.learner.learned if self.model.learner is not None else 0

    async def session(self, session_id: str) -> SessionRecommendations | None:
        """The list the stream made after the session's latest click; None when Redis holds no (readable) state of it."""
        loaded = await self.store.sessions.load({session_id: partition_of(session_id, self.settings.partitions)})
        if loaded.unreadable:
            log.warning("the stored state of session %r could not be read; answered as unknown", session_id)
        state = loaded.states.get(session_id)
        if state is None:
            return None
        *shown, clicked = await self.store.vocab.items([*state.recs.tolist(), int(state.history[-1])])
        return SessionRecommendations(session_id=session_id, item_ids=shown, model_version=state.version, item_id=clicked, ts=state.ts,
                                      partition=state.partition, offset=state.offset, click_time=state.click_time,
                                      age_s=time.time() - state.click_time)

    async def recommend(self, items: Sequence[int | str], k: int | None = None, ts: float | None = None) -> Recommendation:
        """The top-k list after the clicks ``items`` (oldest first) of one session; ValueError for a k above top_k."""
        top_k = self.settings.top_k
        if k is not None and k > top_k:
            raise ValueError(f"k must be at most {top_k} (SESSIONREC_TOP_K), got {k}")
        raws = [str(item) for item in items]
        indices = await self.store.vocab.known(raws)
        ask = _Ask(np.array([i for i in indices if i is not None], dtype=np.int32), time.time() if ts is None else ts)
        self._waiting.append(ask)
        if len(self._waiting) == 1:
            asyncio.get_running_loop().call_soon(self._answer)  # after the requests already at hand have asked too
        version, recs = await ask.answer
        unknown = list(dict.fromkeys(raw for raw, index in zip(raws, indices) if index is None))
        return Recommendation(item_ids=await self.store.vocab.items(recs[: k or top_k].tolist()), model_version=version, unknown=unknown)

    def _answer(self) -> None:
        """One engine call for the lists asked for (at most api_batch_size; the rest in the next round)."""
        asks, self._waiting = self._waiting[: self.settings.api_batch_size], self._waiting[self.settings.api_batch_size :]
        if self._waiting:
            asyncio.get_running_loop().call_soon(self._answer)
        engine = self.model.engine
        assert engine is not None
        try:
            length = self.settings.serving_rules(engine.serving).history_len
            recs = engine.recommend(history_matrix([ask.items for ask in asks], length), np.array([ask.now for ask in asks]))
        except Exception as exc:  # every request of the batch fails with it, and the server goes on
            for ask in asks:
                if not ask.answer.done():  # a request whose client left is cancelled already
                    ask.answer.set_exception(exc)
            return
        for ask, row in zip(asks, recs):
            if not ask.answer.done():
                ask.answer.set_result((engine.version, row))
