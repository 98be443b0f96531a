"""The OpenAPI descriptions of request bodies that come as JSON or as multipart uploads.

Handlers that take files read the body themselves (``serving.rows``); these schemas are what
``/docs`` shows for them and what a schema-driven client (or fuzzer) sends.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["rows_body", "query_body", "RecommendRequest"]

_FILE = {"type": "object", "properties": {"base64": {"type": "string"}}, "required": ["base64"],
         "additionalProperties": False, "description": "an image or audio file, base64-encoded"}
_CELL = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}, _FILE]}
_ROW = {"type": "object", "additionalProperties": _CELL,
        "description": "column -> value: a text, a number, a category, or an image / audio file"}


def rows_body(key: str, description: str, extra: dict[str, Any] | None = None,
              required: list[str] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a body of rows under ``key``, as JSON or as multipart with file parts.

    Args:
        extra: other fields (name → JSON schema); required: the ones that must be given.
    """
    extra = extra or {}
    rows = {"oneOf": [{"type": "array", "items": _ROW}, _ROW], "description": description}
    json_schema = {"type": "object", "properties": {key: rows, **extra}, "required": [key, *(required or [])],
                   "additionalProperties": False}
    multipart = {"type": "object", "additionalProperties": {"type": "string", "format": "binary"},
                 "properties": {key: {"type": "string", "description": f"{description}, as JSON text"},
                                **{k: {"type": "string"} for k in extra}},
                 "description": "file parts are named after their image / audio column; the i-th part of a "
                                "name fills row i"}
    if required:
        multipart["required"] = list(required)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": json_schema},
                                                          "multipart/form-data": {"schema": multipart}}}}


def query_body() -> dict[str, Any]:
    """``openapi_extra`` of a search: one text, image or audio query, and ``k``."""
    k = {"type": "integer", "minimum": 1, "maximum": 1000}
    json_schema = {"type": "object", "additionalProperties": False,
                   "properties": {"text": {"type": "string"}, "image": _FILE, "audio": _FILE, "k": k,
                                  "column": {"type": "string"}}}
    multipart = {"type": "object", "additionalProperties": False,
                 "properties": {"text": {"type": "string"}, "k": {"type": "string"}, "column": {"type": "string"},
                                "image": {"type": "string", "format": "binary"},
                                "audio": {"type": "string", "format": "binary"}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": json_schema},
                                                          "multipart/form-data": {"schema": multipart}}}}


class RecommendRequest(BaseModel):
    """Items for someone who liked ``liked`` and has seen ``seen``."""

    model_config = ConfigDict(extra="forbid")

    liked: list[str | int] = Field(..., min_length=1, max_length=1000, description="ids of liked items")
    seen: list[str | int] = Field(default_factory=list, max_length=100_000, description="ids to leave out")
    k: int = Field(10, ge=1, le=1000, description="how many items")
