"""What ``polymodal serve`` is asked to do: the models and indexes, the address, the limits on
uploads, dynamic batching and access control, checked once before anything is loaded."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from polymodal.errors import ConfigError

__all__ = ["ServeSettings", "Limits", "LOOPBACK", "settings_from"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Limits(BaseModel):
    """Bounds on what one request may send; over a bound the answer is 413."""

    model_config = ConfigDict(extra="forbid")

    file_bytes: int = Field(10 << 20, ge=1, description="bytes per uploaded file (after base64 decoding)")
    request_bytes: int = Field(32 << 20, ge=1, description="bytes per request body")
    pixels: int = Field(16_000_000, ge=1, description="pixels per image (width x height, read from the header)")
    audio_seconds: float = Field(30.0, gt=0, description="seconds per audio clip")
    rows: int = Field(64, ge=1, description="rows per request")
    samples: int = Field(64, ge=1, description="samples per generate request (rows x n)")


class ServeSettings(BaseModel):
    """Everything the service needs; the CLI fills it from its options.

    Attributes:
        models: model directories, each served under its folder name.
        indexes: vector index folders (``polymodal index --out``), each under its folder name.
        batching: gather concurrent predict requests to one model into one forward pass, waiting
            at most ``batch_wait_ms`` for others and taking at most ``max_batch`` rows.
        stale_check_s: how often (at most) a model directory's files are compared with what was
            loaded; a changed directory makes its model answer 409.
    """

    model_config = ConfigDict(extra="forbid")

    models: list[Path] = Field(default_factory=list)
    indexes: list[Path] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    api_key: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    batching: bool = True
    max_batch: int = Field(32, ge=1, le=4096)
    batch_wait_ms: float = Field(5.0, ge=0, le=1000)
    graceful_timeout_s: int = Field(30, ge=0)
    root_path: str = Field("", pattern=r"^(/[A-Za-z0-9._~-]+)*$", description="the path prefix a reverse proxy "
                           "serves the app under (it strips it before passing requests on)")
    stale_check_s: float = Field(1.0, ge=0)
    runtime: Literal["torch", "onnx"] = Field("torch", description="what runs the models' networks: PyTorch, or "
                                              "onnxruntime on a graph exported when the service starts")
    limits: Limits = Field(default_factory=Limits)

    def check(self) -> "ServeSettings":
        """Raise ``ConfigError`` on settings that must not run.

        Any address other than loopback needs an API key; at least one model or index.
        """
        if not self.models and not self.indexes:
            raise ConfigError("nothing to serve: give at least one model directory (polymodal serve DIR) "
                              "or an index (--index DIR)")
        if not _is_loopback(self.host) and not self.api_key:
            raise ConfigError(f"--host {self.host} makes the service reachable from other machines; that needs "
                              "an API key: pass --api-key KEY or set POLYMODAL_API_KEY (or bind to 127.0.0.1)")
        if self.api_key is not None and len(self.api_key) < 16:
            raise ConfigError(f"the API key must be at least 16 characters, got {len(self.api_key)}; use e.g. "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return self


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from(values: dict) -> ServeSettings:
    """``ServeSettings`` from plain values, checked; a bad value is a ``ConfigError``."""
    try:
        return ServeSettings(**values).check()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"serve: {problems}") from None
