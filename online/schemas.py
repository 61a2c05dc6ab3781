"""Request and response payloads of ``POST /v1/relevance`` (DESIGN.md §6), validated with pydantic.

The limits here are the hard ceilings the OpenAPI document advertises; ``ServeConfig`` can set
lower ones. Types are strict: an ad server that sends ``"item_id": 123`` gets a 400 naming
``items.0.item_id`` rather than a silently coerced key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_QUERY_CHARS = 512
MAX_ITEMS = 500
MAX_DEADLINE_MS = 10_000


class Item(BaseModel):
    """One candidate item; only ``item_id`` is required (the rest helps the student and teacher)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    item_id: str = Field(min_length=1, max_length=128)
    title: str | None = Field(None, max_length=1000)
    brand: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=200)
    shop_name: str | None = Field(None, max_length=200)
    price: float | None = Field(None, ge=0)
    attributes: dict[str, str] | None = Field(None, max_length=64)


class RelevanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    items: list[Item] = Field(min_length=1, max_length=MAX_ITEMS)
    deadline_ms: int | None = Field(None, ge=1, le=MAX_DEADLINE_MS,
                                    description="When a tail-tier answer is due (the teacher gets it less the shim's "
                                    "tail_reserve_ms, kept for the fallback).")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("query is empty or only whitespace")
        return query

    @field_validator("items")
    @classmethod
    def _unique_item_ids(cls, items: list[Item]) -> list[Item]:
        seen: set[str] = set()
        for item in items:
            if item.item_id in seen:
                raise ValueError(f"duplicate item_id {item.item_id[:40]!r}")
            seen.add(item.item_id)
        return items


class ItemJudgment(BaseModel):
    item_id: str
    label: str = Field(description="L1..L4; an L2 may name its dimension (L2:brand).")
    score: float = Field(description="sum_k p(Lk) * gain(Lk)")
    p: list[float] = Field(description="p(L1..L4)", min_length=4, max_length=4)
    tier: str = Field(description="head | mid | tail | unknown (Redis unavailable)")
    source: str = Field(description="cache | student | teacher | student_fallback | student_degraded")
    model_version: str


class RelevanceResponse(BaseModel):
    request_id: str
    query_norm: str
    tier: str
    cache_version: str | None
    latency_ms: float
    items: list[ItemJudgment]


class ErrorResponse(BaseModel):
    error: str = Field(description="What is wrong, in words.")
    field: str | None = Field(None, description="The offending field, dotted (items.3.item_id), or body.")
    request_id: str
