"""A small Python client of the API (httpx): a session's latest list, or a list for given items.

    with RecommenderClient("http://127.0.0.1:8000") as api:
        latest = api.session("HycmCUvnFr")          # SessionRecommendations, or None
        answer = api.recommend([523117, "sku-42"])  # Recommendation

Answers are the API's own models (stream.api.models); a failure the API
explains is an ApiError with its status and one-line reason, a server that
does not answer is httpx's own error.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import httpx

from sessionrec.stream.api.models import Health, Recommendation, RecommendRequest, SessionRecommendations


class ApiError(RuntimeError):
    """The API answered with an error: its HTTP status and its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class RecommenderClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, timeout: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def session(self, session_id: str) -> SessionRecommendations | None:
        """The list the stream made after the session's latest click; None when the API knows no state of the session."""
        response = self.http.get(f"/sessions/{quote(session_id, safe='')}/recommendations")
        if response.status_code == 404:
            return None
        return SessionRecommendations.model_validate(_ok(response))

    def recommend(self, item_ids: Sequence[int | str], *, k: int | None = None, ts: float | None = None) -> Recommendation:
        """The top-k list after the clicks ``item_ids`` (oldest first); nothing is stored."""
        body = RecommendRequest(item_ids=list(item_ids), k=k, ts=ts).model_dump(exclude_none=True)
        return Recommendation.model_validate(_ok(self.http.post("/recommend", json=body)))

    def health(self) -> Health:
        return Health.model_validate(_ok(self.http.get("/health")))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RecommenderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ok(response: httpx.Response) -> object:
    """The answer's JSON; an ApiError for an error status."""
    if response.is_success:
        return response.json()
    try:
        detail = str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        detail = response.text.strip()[:200] or response.reason_phrase
    raise ApiError(response.status_code, detail)
