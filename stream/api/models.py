"""The API's request and response bodies: what its OpenAPI document shows, and what the client parses answers into.

Item ids are text in every answer, as on the recommendations topic; a request
may name them as integers or strings, as a click may.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictInt, StrictStr

MAX_ITEMS = 1000  # in one POST /recommend: a bound on what one request can make the server read (only the last history_len count)

ItemId = Annotated[StrictInt | Annotated[StrictStr, Field(min_length=1)], Field(description="An item id: 523117 and \"523117\" name the same item.")]


class SessionRecommendations(BaseModel):
    """The list the stream made after a session's latest click, as the recommendations topic carried it."""

    session_id: str
    item_ids: list[str] = Field(description="Top-k item ids, best first.")
    model_version: str = Field(description="The model that made the list.")
    item_id: str = Field(description="The session's latest click: the item the list answers.")
    ts: float = Field(description="Event time of that click, unix seconds.")
    partition: int = Field(description="Where the click lies on the clicks topic: with offset, the key of its recommendation message.")
    offset: int
    click_time: float = Field(description="When the click reached Kafka (its record timestamp), unix seconds.")
    age_s: float = Field(description="Seconds since click_time by this server's clock: how old the list is (the worker made it a few "
                                     "milliseconds after click_time).")


class RecommendRequest(BaseModel):
    """A session given by its clicks, oldest first; nothing about it is stored."""

    item_ids: list[ItemId] = Field(min_length=1, max_length=MAX_ITEMS, description="The session's clicks, oldest first; the model reads the "
                                   "last history_len of them (the model's serving rules, 50 unless set).")
    k: int | None = Field(default=None, ge=1, description="How many items to return [default and most: the server's top_k].")
    ts: float | None = Field(default=None, description="Event time of the last click, unix seconds, for the item neighbours' recency "
                                                       "[default: now]. Give it to reproduce the stream's list for a replayed click.")


class Recommendation(BaseModel):
    """The top-k list for the items given."""

    item_ids: list[str] = Field(description="Top-k item ids, best first.")
    model_version: str = Field(description="The model that made the list.")
    unknown: list[str] = Field(description="Items of the request that no worker has seen: they are left out of what the model reads.")


class Health(BaseModel):
    model_version: str = Field(description="The model served now.")
    neighbour_lessons: int = Field(description="Lessons learned from the stream's learning feed since start (0 when learning is off).")


class Problem(BaseModel):
    """Why a request failed, in one line."""

    detail: str
