"""The HTTP service: a FastAPI app over model directories and vector indexes, with a web page.

``create_app(ServeSettings(models=[...], indexes=[...]))`` returns the ASGI app; ``serve(settings)``
runs it with uvicorn (``polymodal serve``). FastAPI, uvicorn and python-multipart come with the
``serve`` extra: ``pip install 'polymodal[serve]'``; they are imported on first use.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ServeSettings", "Limits", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    # `polymodal --help` imports the serve command; only serving itself needs FastAPI.
    if name in ("ServeSettings", "Limits"):
        from polymodal.serving import settings

        return getattr(settings, name)
    if name == "create_app":
        from polymodal.serving.app import create_app

        return create_app
    if name == "serve":
        from polymodal.serving.server import serve

        return serve
    raise AttributeError(f"module 'polymodal.serving' has no attribute {name!r}")
