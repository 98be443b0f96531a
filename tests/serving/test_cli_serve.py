"""``polymodal serve`` as a real process: it answers over HTTP, refuses unsafe settings with one
line, and on SIGTERM finishes the requests in flight before it exits; the documented commands use
only options the command has."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import live_service as live

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "POLYMODAL_API_KEY": ""}
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_unsafe_or_broken_settings_are_one_error_line(served, tmp_path):
    public = _cli("serve", str(served.classifier), "--host", "0.0.0.0")
    assert public.returncode == 2 and public.stderr.strip().startswith("error: --host 0.0.0.0")
    assert "--api-key" in public.stderr and "Traceback" not in public.stderr
    missing = _cli("serve", str(tmp_path / "absent"))
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_sigterm_lets_the_requests_in_flight_finish(served, picture):
    process, url = live.start(str(served.classifier), "--index", str(served.index))
    answers: list = []
    finished: list = []

    def ask(n: int) -> None:
        try:
            rows = [{"caption": "a three", "size": float(n)}] * 32
            response = httpx.post(f"{url}/v1/models/digits/explain", data={"rows": json.dumps(rows),
                                  "steps": "256"}, files=[("image", ("p.png", picture))], timeout=120)
            answers.append(response.status_code)
            finished.append(time.monotonic())
        except httpx.HTTPError as exc:  # pragma: no cover - shown in the assertion
            answers.append(repr(exc))

    assert httpx.post(f"{url}/v1/indexes/pictures/search", json={"text": "a one", "k": 2}).status_code == 200
    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    deadline = time.monotonic() + 120
    for thread in threads:
        thread.start()
    while not finished and time.monotonic() < deadline:  # the model works through them one at a time
        time.sleep(0.01)
    stopped = time.monotonic()
    process.terminate()
    for thread in threads:
        thread.join(120)
    err = live.stop(process)
    assert answers == [200] * 6, (answers, err[-2000:])
    assert max(finished) > stopped, "no request was still in flight at SIGTERM: make them slower"
    assert process.returncode in (0, -signal.SIGTERM), err[-2000:]  # uvicorn re-raises the signal once done
    counts = re.search(r"(\d+) requests accepted, (\d+) answered", err)
    assert counts and counts.group(1) == counts.group(2), err[-2000:]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def test_every_serve_option_in_the_docs_exists():
    help_text = re.sub(r"\s+", " ", _cli("serve", "--help").stdout)
    docs = (ROOT / "docs" / "serving.md").read_text() + (ROOT / "README.md").read_text()
    commands = [line for line in docs.splitlines() if "polymodal serve" in line and line.lstrip().startswith(
        (".venv/", "polymodal", "docker", "CMD"))]
    assert commands, "docs/serving.md shows no polymodal serve command"
    for line in commands:
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line.split("#")[0]):
            if option in ("--rm", "--env", "--publish"):  # docker's own
                continue
            assert option in help_text, f"{option} (in: {line.strip()}) is not an option of polymodal serve"
    dockerfile = (ROOT / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M).group(1))
    assert entry[:2] == ["polymodal", "serve"] and all(o in help_text for o in entry if o.startswith("--"))
    assert '-c constraints.txt ".[serve' in dockerfile  # the CPU torch pin, and the service's extra


def test_two_workers_under_a_root_path_answer_and_stop_cleanly(served):
    process, url = live.start(str(served.classifier), "--workers", "2", "--root-path", "/polymodal")
    answers = [httpx.post(f"{url}/v1/models/digits/predict", json={"rows": [{"caption": "a one"}]}).status_code
               for _ in range(6)]
    docs = httpx.get(f"{url}/docs").text
    err = live.stop(process)
    assert answers == [200] * 6, err[-2000:]
    assert "/polymodal/openapi.json" in docs  # what a proxy stripping /polymodal passes on finds its schema
    assert len(re.findall(r"polymodal serve: stopped; (\d+) requests accepted, \1 answered", err)) == 2, err[-2000:]
    assert "died" not in err, err[-2000:]
