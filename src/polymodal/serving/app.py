"""The FastAPI application: ``create_app(settings)`` loads the models and indexes and returns
an ASGI app with the JSON API under ``/v1``, ``/health``, the docs at ``/docs`` and the web
page at ``/``.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from importlib import resources
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from polymodal._version import __version__
import polymodal.serving.answers as answers
from polymodal.serving.batching import Batcher
from polymodal.serving.middleware import DOCS_FILES, Counts, Guard
from polymodal.serving.problems import install_handlers
from polymodal.serving.registry import Registry
from polymodal.serving.routes_indexes import router as index_router
from polymodal.serving.routes_models import router as model_router
from polymodal.serving.settings import ServeSettings

__all__ = ["create_app"]

log = logging.getLogger("polymodal")

_DESCRIPTION = """Predict, explain, embed, search, recommend and generate with polymodal models.

Rows are JSON objects (column → value). Images and audio come as multipart file parts named
after their column (the i-th part of a name fills row i) or as `{"base64": "..."}` in JSON.
Errors are JSON: `{"error": kind, "detail": message}`; 404 unknown model or index, 409 its
folder changed since the service started, 413 over a limit, 422 unusable input."""


def create_app(settings: ServeSettings) -> FastAPI:
    """The service over ``settings.models`` and ``settings.indexes`` (loaded now).

    Raises:
        ConfigError: settings that must not run (see ``ServeSettings.check``).
        ModelDirError: a model or index folder that does not load.
    """
    settings.check()
    registry = Registry(settings)
    for served in registry.models.values():  # predict batches: frames -> one answer per frame
        served.batcher = Batcher(functools.partial(answers.predict_many, served.fitted), len, served.executor,
                                 max_batch=settings.max_batch, wait_s=settings.batch_wait_ms / 1000,
                                 enabled=settings.batching)
    counts = Counts()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for served in registry.models.values():
            await served.batcher.close()
        registry.drain()  # the threads and the models stay: the same app may be started again (tests)
        batchers = [m.batcher for m in registry.models.values()]
        log.info("polymodal serve: stopped; %d requests accepted, %d answered; predict: %d requests in %d forward "
                 "passes", counts.accepted, counts.answered, sum(b.items for b in batchers),
                 sum(b.batches for b in batchers))

    security = [Security(APIKeyHeader(name="X-API-Key", auto_error=False))] if settings.api_key else []
    # /docs with Swagger UI's files from the fastapi-offline package: the docs need no internet either
    app = FastAPIOffline(title="polymodal", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
                         dependencies=security, redoc_url=None, static_url=DOCS_FILES)
    app.state.registry, app.state.settings, app.state.counts = registry, settings, counts
    install_handlers(app)
    app.include_router(model_router)
    app.include_router(index_router)

    @app.get("/health", tags=["service"], summary="ok, or stale: which models or indexes changed on disk")
    async def health(request: Request) -> dict[str, Any]:
        return answers.finite(request.app.state.registry.health())

    page = resources.files("polymodal.serving").joinpath("static", "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": _CSP})

    app.mount("/static", StaticFiles(packages=[("polymodal.serving", "static")]), name="static")
    app.add_middleware(Guard, api_key=settings.api_key, max_bytes=settings.limits.request_bytes, counts=counts)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "X-API-Key", "Authorization"])
    return app


# The page loads only its own files; media it shows are blobs and data from this service.
_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: data:; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'")
