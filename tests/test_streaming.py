"""Predict, evaluate and embed a table file a chunk at a time: the same predictions, row labels and
metrics as over the whole table; shards that concatenate; an output file written atomically."""
from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from synthetic import fit_saved, make_table
from polymodal.cli import app
from polymodal.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")

N = 300
BROKEN = (70, 261)  # rows whose image is not a PNG


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streaming")
    predictor = fit_saved(folder, n=60)
    frame = make_table(folder, n=N, seed=1)
    (folder / "img" / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    frame.loc[list(BROKEN), "photo"] = "img/junk.png"
    frame.loc[[5, 6], "caption"] = None  # absent inputs
    frame.loc[[12], "label"] = "purple"  # a class the model does not know
    frame.to_csv(folder / "test.csv", index=False)
    frame.to_json(folder / "test.jsonl", orient="records", lines=True)
    (folder / "shards").mkdir()
    for k, start in enumerate(range(0, N, 110)):  # images are relative to the shards' folder
        part = frame.iloc[start:start + 110].assign(photo=lambda f: "../" + f.photo)
        part.to_parquet(folder / "shards" / f"part-{k}.parquet", row_group_size=37)
    return folder, predictor


@pytest.mark.parametrize("name,chunk_rows", [("shards", 50), ("test.csv", 300), ("test.jsonl", 64)])
def test_chunked_predict_equals_whole_table_predict(model, name, chunk_rows):
    folder, predictor = model
    whole = predictor.fitted_.predict(folder / "test.csv", on_bad_input="skip_row")  # read and decoded whole
    chunks = list(predictor.predict_chunks(folder / name, on_bad_input="skip_row", chunk_rows=chunk_rows))
    assert len(chunks) == -(-N // chunk_rows)
    streamed = predictor.predict_report(folder / name, on_bad_input="skip_row")
    for report in (streamed, _joined(chunks)):
        pd.testing.assert_series_equal(report.predictions, whole.predictions)  # to the bit
        pd.testing.assert_frame_equal(report.probabilities, whole.probabilities, check_exact=True)
        pd.testing.assert_series_equal(report.absent, whole.absent)
        pd.testing.assert_frame_equal(report.skipped, whole.skipped)
    assert list(streamed.skipped["row"]) == list(BROKEN)  # rows named by their place in the whole table
    assert streamed.note == whole.note.replace(str(folder / "test.csv"), str(folder / name))


def _joined(reports):
    from polymodal.results import PredictionReport

    return PredictionReport(pd.concat([r.predictions for r in reports]), pd.concat([r.probabilities for r in reports]),
                            pd.DataFrame([t for r in reports for t in r.skipped.itertuples(index=False)],
                                         columns=["row", "input", "reason"]),
                            pd.concat([r.absent for r in reports]))


@pytest.mark.parametrize("policy", ["skip_row", "skip_modality"])
def test_chunked_evaluate_gives_exactly_the_whole_tables_metrics(model, policy):
    import polymodal.streaming as streaming

    folder, predictor = model
    whole = predictor.fitted_.evaluate(folder / "test.csv", on_bad_input=policy)  # read and decoded whole
    streamed = streaming.evaluate_report(predictor.fitted_, folder / "shards", on_bad_input=policy, chunk_rows=40)
    assert streamed.metrics == whole.metrics
    assert streamed.metrics["n_unknown_label"] == 1 and streamed.metrics["n"] == N - 1 - 2 * (policy == "skip_row")
    assert streamed.confusion == whole.confusion
    pd.testing.assert_frame_equal(streamed.skipped, whole.skipped)
    assert predictor.evaluate(folder / "test.jsonl", on_bad_input=policy) == whole.metrics


def test_cli_predict_shards_concatenate_into_the_whole_tables_predictions(model, tmp_path):
    folder, _ = model
    runner = CliRunner()
    args = ["predict", str(folder / "model"), "--data", str(folder / "shards"), "--on-bad-input", "skip_row"]
    result = runner.invoke(app, args + ["--out", str(tmp_path / "whole.csv"), "--chunk-rows", "64"])
    assert result.exit_code == 0 and f"wrote {N} predictions" in result.output, result.output
    whole = pd.read_csv(tmp_path / "whole.csv")
    assert list(whole["row"]) == list(range(N)) and whole.loc[list(BROKEN), "predicted_label"].isna().all()
    parts = []
    for i in range(3):
        result = runner.invoke(app, args + ["--out", str(tmp_path / f"part{i}.csv"), "--shard", f"{i}/3",
                                            "--chunk-rows", "30"])
        assert result.exit_code == 0 and "wrote 100 predictions" in result.output, result.output
        lines = (tmp_path / f"part{i}.csv").read_text().splitlines()
        parts += lines if i == 0 else lines[1:]  # each file has the header
    assert parts == (tmp_path / "whole.csv").read_text().splitlines()  # to the character
    old = pd.read_csv(folder / "test.csv")  # the same file as the table read whole (CSV, one chunk)
    result = runner.invoke(app, args[:3] + [str(folder / "test.csv"), "--on-bad-input", "skip_row", "--out",
                                            str(tmp_path / "csv.csv")])
    assert result.exit_code == 0 and len(old) == N
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "csv.csv"), whole)


def test_an_error_half_way_leaves_no_predictions_file(model, tmp_path):
    folder, _ = model
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(app, ["predict", str(folder / "model"), "--data", str(folder / "shards"),
                                      "--out", str(out), "--chunk-rows", "50", "--on-bad-input", "error"])
    assert result.exit_code == 2
    assert "row 70: ../img/junk.png" in result.output and "rows 50 to 99" in result.output  # the whole table's row
    assert list(tmp_path.iterdir()) == []  # no final file and no temporary one left beside it
    out.write_text("previous\n")
    result = CliRunner().invoke(app, ["predict", str(folder / "model"), "--data", str(folder / "shards"),
                                      "--out", str(out), "--on-bad-input", "error"])
    assert result.exit_code == 2 and out.read_text() == "previous\n" and len(list(tmp_path.iterdir())) == 1


def test_cli_embed_streams_and_its_shards_concatenate(model, tmp_path):
    folder, _ = model
    runner = CliRunner()
    args = ["embed", str(folder / "model"), "--data", str(folder / "shards"), "--column", "caption"]
    result = runner.invoke(app, args + ["--id-column", "shop", "--out", str(tmp_path / "all.parquet")])
    assert result.exit_code == 0 and f"wrote {N - 2} vectors" in result.output, result.output
    whole = pd.read_parquet(tmp_path / "all.parquet")
    assert list(whole.columns) == ["row", "id", "vector"] and 5 not in set(whole["row"])
    parts = []
    for i in range(2):
        result = runner.invoke(app, args + ["--id-column", "shop", "--shard", f"{i}/2",
                                            "--out", str(tmp_path / f"p{i}.parquet")])
        assert result.exit_code == 0, result.output
        parts.append(pd.read_parquet(tmp_path / f"p{i}.parquet"))
    joined = pd.concat(parts, ignore_index=True)
    assert joined["row"].tolist() == whole["row"].tolist() and joined["id"].tolist() == whole["id"].tolist()


def test_a_table_without_any_input_column_is_refused_before_reading_rows(model, tmp_path):
    folder, predictor = model
    pd.DataFrame({"other": range(5)}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match="none of the model's input columns"):
        next(predictor.predict_chunks(tmp_path / "t.parquet"))
