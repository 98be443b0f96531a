"""Fuzzing the service: schemathesis over its OpenAPI document, and mutated real files as uploads
(bench/serve_fuzz.py, bounded). No answer may be a 500, and a good request is answered afterwards."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.usefixtures("one_thread")

SERVE_FUZZ = Path(__file__).resolve().parents[2] / "bench" / "serve_fuzz.py"


# the served names, so that examples reach the handlers (and random names, which are 404s)
NAMES = {"/v1/models/{name}": ["digits", "aligned", "sketches"], "/v1/indexes/{name}": ["pictures"]}


def _path_choices(path: str) -> list:
    names = next((v for k, v in NAMES.items() if path.startswith(k)), None)
    if names is None:
        return [None]
    extra = {"item_id": "item3"} if "{item_id}" in path else {}
    return [None] + [{"name": n, **extra} for n in names]


def test_no_request_the_schema_allows_gets_a_500(app):
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen, failures = {}, []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for names in _path_choices(operation.path):
                strategy = operation.as_strategy(mode, **({"path_parameters": names} if names else {}))

                @given(case=strategy)
                @settings(max_examples=6, deadline=None, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
                def check(case):
                    response = case.call()
                    seen[response.status_code] = seen.get(response.status_code, 0) + 1
                    if response.status_code >= 500:
                        failures.append(f"{case.method} {case.formatted_path}: {response.text[:200]}")
                try:
                    check()
                except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                    assert mode is GenerationMode.NEGATIVE
    print("schemathesis answers by status:", dict(sorted(seen.items())))
    assert sum(seen.values()) > 100 and 200 in seen and 422 in seen, seen
    assert not failures, failures[:5]


def test_a_good_request_is_answered_after_the_fuzzing(client):
    assert client.post("/v1/models/digits/predict", json={"rows": [{"caption": "a one"}]}).status_code == 200
    assert client.get("/health").json()["status"] == "ok"


def test_mutated_files_as_uploads_get_no_500(served, data_dir):
    env = {**os.environ, "POLYMODAL_DATA": str(data_dir), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(SERVE_FUZZ), "--cases", "120", "--seed", "2", "--model",
                             str(served.classifier), "--index", str(served.index)],
                            capture_output=True, text=True, env=env, timeout=600)
    report = result.stdout + result.stderr[-3000:]
    assert re.search(r"^total(\s+\d+)+\s+120$", result.stdout, re.M), report
    assert "500 responses: 0" in result.stdout, report
    assert "good request afterwards: 200" in result.stdout, report
    assert result.returncode == 0, report
