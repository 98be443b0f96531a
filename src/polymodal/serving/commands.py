"""``polymodal serve``: a plain function with typer annotations; ``polymodal.cli`` registers it
(with its error handling). It fills ``ServeSettings`` and calls ``serving.serve``."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from polymodal.errors import ConfigError

__all__ = ["serve"]


def serve(
    models: Optional[List[Path]] = typer.Argument(None, help="model directories (each served under its folder name)"),
    index: Optional[List[Path]] = typer.Option(None, "--index", help="vector index folder to search (repeatable)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind; any but loopback needs --api-key"),
    port: int = typer.Option(8000, "--port", help="port to listen on"),
    workers: int = typer.Option(1, "--workers", min=1, help="processes, each with its own copy of the models"),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="POLYMODAL_API_KEY",
                                          help="key requests must send (X-API-Key or Authorization: Bearer)"),
    cors_origin: Optional[List[str]] = typer.Option(None, "--cors-origin", help="allow browser pages of this origin (repeatable)"),
    max_batch: int = typer.Option(32, "--max-batch", min=1, help="rows per forward pass of dynamic batching"),
    batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", min=0, help="longest wait for a batch to fill"),
    no_batching: bool = typer.Option(False, "--no-batching", help="one forward pass per request"),
    max_file_mb: float = typer.Option(10.0, "--max-file-mb", min=0.001, help="largest uploaded file"),
    max_request_mb: float = typer.Option(32.0, "--max-request-mb", min=0.001, help="largest request body"),
    max_pixels: int = typer.Option(16_000_000, "--max-pixels", min=1, help="largest image (width x height)"),
    max_audio_seconds: float = typer.Option(30.0, "--max-audio-seconds", min=0.01, help="longest audio clip"),
    max_rows: int = typer.Option(64, "--max-rows", min=1, help="rows per request"),
    graceful_timeout: int = typer.Option(30, "--graceful-timeout", min=0,
                                         help="seconds in-flight requests get to finish after SIGTERM"),
    root_path: str = typer.Option("", "--root-path", help="path prefix a reverse proxy serves it under, e.g. /polymodal"),
    runtime: str = typer.Option("torch", "--runtime", help="torch | onnx: run the networks with onnxruntime "
                                "(exported at start; needs the onnx extra)"),
) -> None:
    """Serve models and indexes over HTTP: a JSON API (docs at /docs) and a web page at /."""
    from polymodal.serving.server import serve as run
    from polymodal.serving.settings import settings_from

    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"polymodal serve needs the serve extra ({exc.name} is missing): "
                          "pip install 'polymodal[serve]'") from None
    settings = settings_from({
        "models": list(models or []), "indexes": list(index or []), "host": host, "port": port,
        "workers": workers, "api_key": api_key or None, "cors_origins": list(cors_origin or []),
        "batching": not no_batching, "max_batch": max_batch, "batch_wait_ms": batch_wait_ms,
        "graceful_timeout_s": graceful_timeout, "root_path": root_path, "runtime": runtime,
        "limits": {"file_bytes": int(max_file_mb * (1 << 20)), "request_bytes": int(max_request_mb * (1 << 20)),
                   "pixels": max_pixels, "audio_seconds": max_audio_seconds, "rows": max_rows},
    })
    run(settings, say=lambda line: typer.echo(line, err=True))
