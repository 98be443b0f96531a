"""Running the service with uvicorn: one process, or several workers that each load the models.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets the requests in flight
finish (for at most ``graceful_timeout_s``), then the app stops its batchers and logs how many
requests it accepted and answered.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

from polymodal.errors import ConfigError
from polymodal.serving.settings import ServeSettings, settings_from

__all__ = ["serve", "app_from_env", "SETTINGS_ENV"]

log = logging.getLogger("polymodal")

# How the parent hands the settings to its worker processes (each builds its own app).
SETTINGS_ENV = "POLYMODAL_SERVE_SETTINGS"


def app_from_env() -> Any:
    """The app of one worker process, from the settings its parent put in ``SETTINGS_ENV``."""
    from polymodal.serving.app import create_app

    if not log.handlers:  # a worker process: log as the `polymodal serve` parent does
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ConfigError(f"{SETTINGS_ENV} is not set; start the service with `polymodal serve`")
    return create_app(settings_from(json.loads(text)))


def serve(settings: ServeSettings, say: Any = log.info) -> None:
    """Load the models and indexes and answer requests until stopped.

    Raises:
        ConfigError, ModelDirError: before binding, on bad settings or folders that do not load.
    """
    import uvicorn

    from polymodal.serving.app import create_app
    from polymodal.serving.registry import check_loadable

    settings.check()
    common = {"host": settings.host, "port": settings.port, "timeout_graceful_shutdown": settings.graceful_timeout_s,
              "log_level": "info", "access_log": False, "server_header": False,
              # a worker loading its models answers no health ping meanwhile: give it time
              "timeout_worker_healthcheck": 120,
              "root_path": settings.root_path}
    served = ", ".join([p.name for p in settings.models] + [f"{p.name} (index)" for p in settings.indexes])
    if settings.workers == 1:
        app = create_app(settings)
        say(f"serving {served} on http://{_url_host(settings.host)}:{settings.port} (docs: /docs)")
        uvicorn.run(app, **common)
        return
    check_loadable(settings)  # fail here, once, rather than in every worker
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    say(f"serving {served} on http://{_url_host(settings.host)}:{settings.port} with {settings.workers} workers")
    uvicorn.run("polymodal.serving.server:app_from_env", factory=True, workers=settings.workers, **common)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
