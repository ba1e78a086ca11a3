"""The HTTP face of the Recommender: routes, one-line problems, and the OpenAPI document FastAPI derives from them.

``GET /sessions/{session_id}/recommendations``: the latest list the stream
made for a session (the session id may hold any character, slashes too, when
escaped in the URL). ``POST /recommend``: a list for the items given,
stateless. ``GET /health``: the model served. Every failure answers
``{"detail": "<one line>"}``: 404 for a session without a state, 422 for a
request that does not validate, 503 while Redis does not answer (or has lost its data and is not seeded again yet).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from sessionrec.stream.api.models import Health, Problem, Recommendation, RecommendRequest, SessionRecommendations
from sessionrec.stream.api.recommender import Recommender
from sessionrec.stream.logs import setup_logging
from sessionrec.stream.redis.connection import RedisForgot
from sessionrec.stream.settings import Settings

log = logging.getLogger(__name__)
PROBLEMS = {422: {"model": Problem, "description": "The request does not validate."},
            503: {"model": Problem, "description": "Redis does not answer."}}


def create_app(settings: Settings) -> FastAPI:
    """The API over the Redis (and model registry) the settings name; connects when the server starts."""
    holder: dict[str, Recommender] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder["recommender"] = await Recommender.start(settings)
        try:
            yield
        finally:
            await holder.pop("recommender").close()

    app = FastAPI(title="sessionrec", version=version("sessionrec"), lifespan=lifespan, summary="Next-item recommendations for shop sessions: "
                  "the latest list the stream made for a session, or a list for given items.")

    @app.get("/sessions/{session_id:path}/recommendations", responses={404: {"model": Problem, "description": "No state of this session."}, **PROBLEMS})
    async def session_recommendations(session_id: str) -> SessionRecommendations:
        """The list the stream made after the session's latest click, equal to its message on the recommendations topic."""
        found = await holder["recommender"].session(session_id)
        if found is None:
            raise HTTPException(404, f"no recommendations for session {session_id!r}: no click of it was served, or its state expired")
        return found

    @app.post("/recommend", responses=PROBLEMS)
    async def recommend(body: RecommendRequest) -> Recommendation:
        """The top-k list after the clicks given, read by the served model from a fresh state; nothing is stored."""
        try:
            return await holder["recommender"].recommend(body.item_ids, body.k, body.ts)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/health", responses=PROBLEMS)
    async def health() -> Health:
        """The model served now."""
        recommender = holder["recommender"]
        return Health(model_version=recommender.version, neighbour_lessons=recommender.lessons)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        return JSONResponse({"detail": f"{where}: {first['msg']}{more}"}, status_code=422)

    @app.exception_handler(RedisError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(RedisForgot)  # until the model follower has seeded it again (stream.worker.served: recover)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s failed: Redis does not answer (%s)", request.method, request.url.path, exc)
        return JSONResponse({"detail": f"Redis does not answer ({exc}); try again"}, status_code=503)

    return app


def from_env() -> FastAPI:
    """The API as each server process builds it (uvicorn's factory): settings and logging from the SESSIONREC_* variables."""
    settings = Settings.from_env()
    setup_logging(settings, "info")
    return create_app(settings)
