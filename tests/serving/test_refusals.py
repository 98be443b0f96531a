"""Bad requests get a 4xx with a JSON body that says what was wrong; never a 500, never a file read
from a path a request names."""
from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_thread")


def _refused(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    for word in words:
        assert word in body["detail"], body
    return body


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_unknown_model_and_index_are_404(client):
    _refused(client.post("/v1/models/nope/predict", json={"rows": [{}]}), 404, "no model named 'nope'", "digits")
    _refused(client.post("/v1/indexes/nope/search", json={"text": "a"}), 404, "no index named 'nope'")
    _refused(client.get("/v1/nothing"), 404)


def test_a_path_in_a_file_column_is_refused_not_read(client, served):
    for value in (str(served.data / "d3.png"), "d3.png", "../../etc/passwd", "file:///etc/passwd"):
        _refused(client.post("/v1/models/digits/predict", json={"rows": [{"image": value}]}), 422,
                 "reads no file named by a path")
    _refused(client.post("/v1/models/digits/predict", json={"rows": [{"audio": {"path": "/etc/passwd"}}]}), 422,
             "base64")
    _refused(client.post("/v1/models/digits/predict", json={"rows": [{"image": {"bytes": "x", "path": "/x"}}]}), 422)


def test_files_are_checked_by_content_whatever_their_name(client, picture, clip):
    _refused(client.post("/v1/models/digits/predict", files=[("image", ("photo.png", clip, "image/png"))]), 422,
             "row 0, column 'image'", "not an image")
    _refused(client.post("/v1/models/digits/predict", files=[("audio", ("clip.wav", picture, "audio/wav"))]), 422,
             "not audio")
    _refused(client.post("/v1/models/digits/predict", files=[("image", ("t.png", picture[:60]))]), 422, "image")
    _refused(client.post("/v1/models/digits/predict", files=[("image", ("e.png", b""))]), 422, "empty")
    _refused(client.post("/v1/models/digits/predict", json={"rows": [{"image": {"base64": "%%%"}}]}), 422, "base64")
    _refused(client.post("/v1/indexes/pictures/search", files=[("image", ("q.png", clip))]), 422, "not an image")
    _refused(client.post("/v1/models/digits/predict", files=[("caption", ("c.txt", b"a one"))]), 422,
             "name no image or audio column")


def test_over_a_limit_is_413(served, picture, clip):
    from fastapi.testclient import TestClient

    from polymodal.serving import ServeSettings, create_app

    limits = {"file_bytes": 40_000, "request_bytes": 100_000, "pixels": 10_000, "audio_seconds": 0.25, "rows": 3}
    client = TestClient(create_app(ServeSettings(models=[served.classifier], indexes=[served.index], limits=limits)),
                        raise_server_exceptions=False)
    _refused(client.post("/v1/models/digits/predict", files=[("audio", ("c.wav", b"\0" * 50_000))]), 413, "40,000")
    _refused(client.post("/v1/models/digits/predict",
                         json={"rows": [{"audio": {"base64": base64.b64encode(b"\0" * 50_000).decode()}}]}), 413)
    _refused(client.post("/v1/models/digits/predict", content=b"{" + b" " * 200_000 + b"}",
                         headers={"content-type": "application/json"}), 413, "100,000")
    _refused(client.post("/v1/models/digits/predict", json={"rows": [{}] * 4}), 413, "4 rows", "limit of 3")
    wide = io.BytesIO()
    Image.new("L", (200, 100), 0).save(wide, format="PNG")
    _refused(client.post("/v1/models/digits/predict", files=[("image", ("w.png", wide.getvalue()))]), 413,
             "200x100 pixels")
    _refused(client.post("/v1/models/digits/predict", files=[("image", ("bomb.png", _png_claiming(10**5, 10**5)))]), 413)
    _refused(client.post("/v1/models/digits/predict", files=[("audio", ("c.wav", clip))]), 413, "over the limit of 0.25 s")
    _refused(client.post("/v1/indexes/pictures/search", files=[("audio", ("c.wav", clip))]), 413)
    assert client.post("/v1/models/digits/predict", files=[("image", ("p.png", picture))]).status_code == 200


def test_malformed_requests_are_4xx_with_what_was_wrong(client):
    post = client.post
    _refused(post("/v1/models/digits/predict", content=b"{not json", headers={"content-type": "application/json"}),
             422, "not valid JSON")
    _refused(post("/v1/models/digits/predict", content=b"rows=1", headers={"content-type": "text/plain"}), 415)
    _refused(post("/v1/models/digits/predict", json=[1, 2]), 422, "must be an object")
    _refused(post("/v1/models/digits/predict", json={"rows": "a row"}), 422, "list of objects")
    _refused(post("/v1/models/digits/predict", json={"rows": []}), 422, "no rows")
    _refused(post("/v1/models/digits/predict", json={"rows": [{"captoin": "a one"}]}), 422, "no column 'captoin'",
             "caption")
    _refused(post("/v1/models/digits/predict", json={"rows": [{"size": "big"}]}), 422, "finite number")
    _refused(post("/v1/models/digits/predict", json={"rows": [{"caption": 3}]}), 422, "expected a text")
    _refused(post("/v1/models/digits/predict", data={"rows": "[{"}), 422, "not valid JSON")
    json_body = {"content-type": "application/json"}
    _refused(post("/v1/models/digits/predict", content=b"[" * 100_000, headers=json_body), 422, "not valid JSON")
    _refused(post("/v1/models/digits/predict", data={"rows": "[" * 100_000}), 422, "not valid JSON")
    _refused(post("/v1/models/digits/predict", json={"rows": [{"size": 10**400}]}), 422, "finite number")
    _refused(post("/v1/models/digits/predict", content=b'{"rows": [{"size": NaN}]}', headers=json_body), 422)
    _refused(post("/v1/indexes/pictures/search", content=b'{"text": "a \\ud800"}', headers=json_body), 422,
             "unpaired surrogate")
    _refused(post("/v1/models/aligned/predict", json={"rows": [{}]}), 422, "alignment model")
    _refused(post("/v1/models/sketches/predict", json={"rows": [{}]}), 422, "generation model")
    _refused(post("/v1/models/aligned/embed", json={"rows": [{"caption": "x"}]}), 422, "'column'")
    _refused(post("/v1/models/aligned/embed", json={"rows": [{"caption": "x"}], "column": "size"}), 422, "size")
    _refused(post("/v1/indexes/pictures/search", json={"text": "a", "image": {"base64": ""}}), 422, "exactly one")
    _refused(post("/v1/indexes/pictures/search", json={"text": "a", "k": 41}), 422, "larger than the collection")
    _refused(post("/v1/indexes/pictures/search", json={"text": "a", "k": "many"}), 422, "whole number")
    _refused(post("/v1/indexes/pictures/search", json={"text": "   "}), 422, "empty")
    _refused(post("/v1/indexes/pictures/recommend", json={"liked": ["nope"]}), 422, "not in the index")
    _refused(post("/v1/indexes/pictures/recommend", json={"liked": []}), 422, "liked")
    _refused(post("/v1/models/sketches/generate", json={"conditions": {"label": "one"}, "n": 1000}), 422, "'n'")
    _refused(post("/v1/models/sketches/generate", json={"conditions": [{"label": "one"}] * 2, "format": "file"}),
             422, "format: file")


def test_the_api_schema_and_the_page_are_served(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/models/{name}/predict", "/v1/indexes/{name}/search", "/health"} <= set(schema["paths"])
    content = schema["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-files/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs-files/swagger-ui-bundle.js").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "fetch(" in client.get("/static/app.js").text
    assert json.loads(client.get("/health").text)["status"] == "ok"
