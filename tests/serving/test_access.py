"""Who may call the service: loopback by default, an API key for any other address, CORS only for
the origins named, and a model whose folder changed is refused rather than silently reloaded."""
from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from polymodal.errors import ConfigError
from polymodal.serving import ServeSettings, create_app

pytestmark = pytest.mark.usefixtures("one_thread")

KEY = "k3y-for-tests-0123456789"


def test_binding_beyond_loopback_needs_an_api_key(served):
    with pytest.raises(ConfigError, match="needs an API key"):
        create_app(ServeSettings(models=[served.classifier], host="0.0.0.0"))
    with pytest.raises(ConfigError, match="at least 16 characters"):
        create_app(ServeSettings(models=[served.classifier], host="0.0.0.0", api_key="short"))
    with pytest.raises(ConfigError, match="nothing to serve"):
        create_app(ServeSettings())
    assert ServeSettings(models=[served.classifier], host="::1").check()
    assert ServeSettings(models=[served.classifier], host="127.0.0.2").check()


def test_the_api_key_is_required_in_either_header(served):
    client = TestClient(create_app(ServeSettings(models=[served.classifier], host="0.0.0.0", api_key=KEY)))
    refused = client.get("/v1/models")
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert refused.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/models/digits/predict", json={"rows": [{}]}).status_code == 401
    assert client.get("/v1/models", headers={"X-API-Key": KEY + "x"}).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Basic {KEY}"}).status_code == 401
    assert client.get("/v1/models", headers={"X-API-Key": KEY}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    ok = client.post("/v1/models/digits/predict", json={"rows": [{"caption": "a one"}]}, headers={"X-API-Key": KEY})
    assert ok.status_code == 200
    for open_path in ("/", "/health", "/docs", "/openapi.json", "/static/app.js"):
        assert client.get(open_path).status_code == 200, open_path
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"


def test_cors_is_off_unless_an_origin_is_given(served, client):
    asked = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.get("/v1/models", headers={"Origin": "https://example.org"}).headers
    assert "access-control-allow-origin" not in client.options("/v1/models", headers=asked).headers
    allowed = TestClient(create_app(ServeSettings(models=[served.classifier], cors_origins=["https://example.org"])))
    preflight = allowed.options("/v1/models/digits/predict", headers=asked)
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "https://example.org"
    other = allowed.options("/v1/models/digits/predict", headers={**asked, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    got = allowed.get("/v1/models", headers={"Origin": "https://example.org"})
    assert got.headers["access-control-allow-origin"] == "https://example.org"


def test_a_model_changed_on_disk_is_stale_and_answers_409(served, tmp_path):
    folder = tmp_path / "digits"
    shutil.copytree(served.classifier, folder)
    index = tmp_path / "pictures"
    shutil.copytree(served.index, index)
    client = TestClient(create_app(ServeSettings(models=[folder], indexes=[index], stale_check_s=0)),
                        raise_server_exceptions=False)
    assert client.post("/v1/models/digits/predict", json={"rows": [{"caption": "a one"}]}).status_code == 200
    metrics = folder / "metrics.json"
    metrics.write_text(metrics.read_text().replace("accuracy", "accuracy_"))  # as a new save would change it
    health = client.get("/health").json()
    assert health["status"] == "stale" and health["models"] == {"digits": "stale"} and health["stale"] == ["model digits"]
    refused = client.post("/v1/models/digits/predict", json={"rows": [{"caption": "a one"}]})
    assert refused.status_code == 409 and "restart the service" in refused.json()["detail"]
    assert client.get("/v1/models").json()["models"][0]["stale"] is True
    assert client.post("/v1/indexes/pictures/search", json={"text": "a one", "k": 2}).status_code == 200
    (index / "ids.json").write_text("[]")
    assert client.post("/v1/indexes/pictures/search", json={"text": "a one", "k": 2}).status_code == 409
    assert client.get("/health").json()["indexes"] == {"pictures": "stale"}
