"""A real ``polymodal serve`` process on a free loopback port, for tests that need one."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(*args: str, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """``polymodal serve ARGS --port P`` in a subprocess; returns it and its URL once /health answers."""
    port = free_port()
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "polymodal.cli", "serve", *args, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"polymodal serve exited with {process.returncode}: {process.stderr.read()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"polymodal serve did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> str:
    """Stop the server (SIGTERM, then kill after 60 s); returns what it wrote to stderr."""
    if process.poll() is None:
        process.terminate()
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err
