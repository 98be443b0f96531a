"""Errors as HTTP answers: every refusal is a JSON body ``{"error": kind, "detail": message}``.

Bad input is a 4xx, never a 500: ``Problem`` carries its own status, a ``PolymodalError`` from
the library becomes 422 (409 for a model directory that changed), and only an unexpected
exception is a 500, logged with its traceback and answered without internals.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from polymodal.errors import ModelDirError, PolymodalError

__all__ = ["Problem", "install_handlers", "answer"]

log = logging.getLogger("polymodal")

_KINDS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
          409: "stale_model", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_input",
          500: "internal_error", 503: "unavailable"}


class Problem(Exception):
    """A request the service refuses: ``status`` (4xx) and a message that says what to fix."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def answer(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON body of a refusal."""
    return JSONResponse({"error": _KINDS.get(status, "error"), "detail": detail}, status_code=status,
                        headers=headers)


def _status_of(exc: PolymodalError) -> int:
    return 409 if isinstance(exc, ModelDirError) else 422


def install_handlers(app: FastAPI) -> None:
    """Turn ``Problem``, ``PolymodalError``, FastAPI's validation errors and HTTP errors into JSON."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return answer(exc.status, exc.detail)

    @app.exception_handler(PolymodalError)
    async def _library(request: Request, exc: PolymodalError) -> JSONResponse:
        return answer(_status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors()[:5]]
        return answer(422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return answer(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return answer(500, "internal error; the server log has the details")
