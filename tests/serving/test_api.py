"""The JSON API over small models trained on real files: each endpoint answers what the library
answers for the same rows, with files sent as multipart parts or as base64."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polymodal import Predictor, __version__

pytestmark = pytest.mark.usefixtures("one_thread")


def test_health_and_models_say_inputs_classes_metrics_version_and_checksum(client, served):
    import hashlib

    assert client.get("/health").json() == {"status": "ok", "stale": [], "indexes": {"pictures": "ok"},
                                            "models": {"digits": "ok", "aligned": "ok", "sketches": "ok"}}
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    digits = models["digits"]
    assert digits["classes"] == ["one", "three", "two", "zero"] and digits["problem_type"] == "classification"
    roles = {c["name"]: (i["modality"], c["role"]) for i in digits["inputs"] for c in i["columns"]}
    assert roles == {"caption": ("text", "text"), "image": ("image", "image"), "audio": ("audio", "audio"),
                     "size": ("tabular", "numeric")}
    assert set(digits["metrics"]) >= {"accuracy", "log_loss"} and digits["version"] == __version__
    assert digits["manifest_sha256"] == hashlib.sha256((served.classifier / "manifest.json").read_bytes()).hexdigest()
    assert models["sketches"]["generates"] == ["image"] and models["sketches"]["conditions"] == ["label"]
    index = client.get("/v1/indexes").json()["indexes"][0]
    assert index["name"] == "pictures" and index["count"] == 40 and index["model"] == "aligned"
    assert index["queries"] == {"text": ["caption"], "image": ["image"], "audio": ["audio"]} and index["items"]


def test_predict_multipart_image_and_audio_answers_as_the_library_does(client, served, picture, clip, data_dir):
    rows = [{"caption": "a three", "size": 3.0}, {"caption": "a one"}]
    answer = client.post("/v1/models/digits/predict", data={"rows": json.dumps(rows)},
                         files=[("image", ("anything.bin", picture, "text/plain")),
                                ("audio", ("x.png", clip, "image/png"))])  # names and types are not trusted
    assert answer.status_code == 200, answer.text
    got = answer.json()["predictions"]
    table = pd.DataFrame([{**rows[0], "image": str(served.data / "d3.png"),
                           "audio": str(data_dir / "fsdd" / "3_jackson_7.wav")}, rows[1]])
    expected = Predictor.load(served.classifier).predict_report(table)
    for n, row in enumerate(got):
        assert row["row"] == n and row["label"] == expected.predictions.iloc[n]
        np.testing.assert_allclose([row["probabilities"][c] for c in expected.probabilities.columns],
                                   expected.probabilities.iloc[n].to_numpy(), atol=1e-5)
    assert got[0]["absent"] == [] and got[0]["skipped"] == []
    assert got[1]["absent"] == ["audio", "image", "tabular"]
    assert abs(sum(got[0]["probabilities"].values()) - 1) < 1e-5


def test_base64_cells_answer_as_uploads_do(client, picture, clip):
    as_files = client.post("/v1/models/digits/predict", data={"rows": json.dumps([{"caption": "a three"}])},
                           files=[("image", ("p", picture)), ("audio", ("c", clip))]).json()
    encoded = {"caption": "a three", "image": {"base64": base64.b64encode(picture).decode()},
               "audio": {"base64": "data:audio/wav;base64," + base64.b64encode(clip).decode()}}
    as_json = client.post("/v1/models/digits/predict", json={"rows": [encoded]})
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["predictions"] == as_files["predictions"]


def test_an_input_the_model_cannot_use_is_skipped_with_its_reason(client):
    large = io.BytesIO()
    Image.new("L", (100, 100), 128).save(large, format="PNG")  # within the service's limits, not the model's
    answer = client.post("/v1/models/digits/predict", data={"rows": json.dumps([{"caption": "a two"}])},
                         files=[("image", ("big.png", large.getvalue()))])
    assert answer.status_code == 200, answer.text
    row = answer.json()["predictions"][0]
    assert row["label"] is not None
    assert row["skipped"] == [{"input": "image", "reason": "image too large: 100x100 pixels exceeds max_pixels=4,096"}]


def test_explain_gives_each_input_its_importance_for_the_rows_sent(client, picture, clip):
    rows = [{"caption": "a three", "size": 3.0}, {"caption": "a zero", "size": 0.5}]
    answer = client.post("/v1/models/digits/explain", data={"rows": json.dumps(rows), "steps": "8"},
                         files=[("image", ("p", picture)), ("audio", ("c", clip)), ("audio", ("c", clip))])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    inputs = {i["input"]: i for i in body["inputs"]}
    assert set(inputs) == {"audio", "caption", "image", "tabular"}
    assert all(isinstance(i["ablation"], float) for i in inputs.values())
    assert len(body["rows"]) == 2 and "ablation_image" in body["rows"][0]
    assert body["rows"][1]["ablation_image"] is None  # the second row has no image: NaN → null


def test_embed_search_recommend_and_items(client, served, picture, clip):
    embedded = client.post("/v1/models/aligned/embed", json={"rows": [{"caption": "a three"}, {}], "column": "caption"})
    assert embedded.status_code == 200, embedded.text
    vectors = embedded.json()["vectors"]
    assert embedded.json()["dim"] == 8 and vectors[1] is None and abs(np.linalg.norm(vectors[0]) - 1) < 1e-5

    from polymodal.retrieval import Searcher

    expected = Searcher.open(served.index).search(text="a three", k=5)
    by_text = client.post("/v1/indexes/pictures/search", json={"text": "a three", "k": 5}).json()["results"]
    assert [r["id"] for r in by_text] == expected["id"].tolist()
    by_image = client.post("/v1/indexes/pictures/search", data={"k": "1"}, files=[("image", ("q", picture))])
    assert by_image.status_code == 200 and by_image.json()["results"][0]["id"] == "item3"  # itself
    by_audio = client.post("/v1/indexes/pictures/search",
                           json={"audio": {"base64": base64.b64encode(clip).decode()}, "k": 3})
    assert by_audio.status_code == 200 and len(by_audio.json()["results"]) == 3

    liked = client.post("/v1/indexes/pictures/recommend", json={"liked": ["item1", "item5"], "seen": ["item9"], "k": 4})
    assert liked.status_code == 200, liked.text
    ids = [r["id"] for r in liked.json()["results"]]
    assert len(ids) == 4 and not {"item1", "item5", "item9"} & set(ids)

    shown = client.get("/v1/indexes/pictures/items/item3")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png" and shown.content == picture
    assert client.get("/v1/indexes/pictures/items/nothing").status_code == 404


def test_generate_answers_pngs_as_json_or_one_file(client):
    answer = client.post("/v1/models/sketches/generate", json={"conditions": [{"label": "one"}, {"label": "two"}],
                                                               "n": 2, "seed": 3})
    assert answer.status_code == 200, answer.text
    samples = answer.json()["samples"]
    assert [(s["row"], s["sample"], s["label"]) for s in samples] == [(0, 0, "one"), (0, 1, "one"), (1, 0, "two"),
                                                                       (1, 1, "two")]
    picture = Image.open(io.BytesIO(base64.b64decode(samples[0]["base64"])))
    assert picture.size == (16, 16) and samples[0]["media_type"] == "image/png"
    again = client.post("/v1/models/sketches/generate", json={"conditions": [{"label": "one"}], "n": 2, "seed": 3})
    assert [s["base64"] for s in again.json()["samples"]] == [s["base64"] for s in samples[:2]]  # seeded
    one = client.post("/v1/models/sketches/generate", json={"conditions": {"label": "one"}, "format": "file", "seed": 3})
    assert one.status_code == 200 and one.headers["content-type"] == "image/png"
    assert one.content == base64.b64decode(samples[0]["base64"])
    assert client.post("/v1/models/digits/generate", json={"conditions": {}}).status_code == 422
    unknown = client.post("/v1/models/sketches/generate", json={"conditions": {"label": "eleven"}})
    assert unknown.status_code == 422 and "never seen in training" in unknown.json()["detail"]
