"""What a newcomer meets first on the command line and in a notebook: flags that read as flags,
--version / --quiet / --log-file, visible progress lines in Python, predict --id-column,
evaluate's confusion matrix, explain per tabular column and zero-shot; on files written to disk."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from synthetic import make_table
from polymodal import __version__
from polymodal.cli import app

FAST_YAML = {
    "seed": 0,
    "text": {"encoder": {"name": "gru"}},
    "image": {"preprocess": {"size": 12}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    "training": {"max_epochs": 2, "batch_size": 16, "precision": "32"},
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """A classifier fitted by ``polymodal --quiet --log-file ... fit`` on a table of files."""
    folder = tmp_path_factory.mktemp("papercuts")
    make_table(folder, n=45).to_csv(folder / "train.csv", index=False)
    (folder / "config.yaml").write_text(yaml.safe_dump(FAST_YAML))
    result = run("--quiet", "--log-file", str(folder / "logs" / "fit.log"), "fit", "--train", "train.csv",
                 "--label", "label", "--config", "config.yaml", "--out", "model", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, folder / "model", result


def test_every_bool_option_is_a_plain_flag_in_help_and_on_the_line():
    group = typer.main.get_command(app)
    runner = CliRunner()
    assert "<bool>" not in runner.invoke(app, ["--help"]).output
    for name, command in group.commands.items():
        text = runner.invoke(app, [name, "--help"]).output
        assert "<bool>" not in text, f"polymodal {name} --help: {text}"
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.types.BoolParamType):
                assert param.is_flag, f"polymodal {name} {param.opts[0]} takes a value; make it a flag"
                assert param.opts[0] in text
    refused = runner.invoke(app, ["fit", "--train", "t.csv", "--out", "m", "--resume", "true"])
    assert refused.exit_code == 2 and "unexpected extra argument" in refused.output.lower()


def test_version_is_printed(tmp_path):
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"polymodal {__version__}"


def test_quiet_keeps_stderr_to_warnings_and_the_log_file_gets_the_lines(fitted):
    folder, _, result = fitted
    assert "Columns:" not in result.stderr and "Trained" not in result.stderr and "Epoch" not in result.stderr
    log = (folder / "logs" / "fit.log").read_text()
    assert "INFO Columns:" in log and "shop" in log and "INFO Trained" in log
    assert json.loads(result.stdout)["model"] == "model"
    loud = run("--log-file", str(folder / "logs" / "evaluate.log"), "evaluate", "model", "--data", "train.csv",
               cwd=folder)
    assert loud.returncode == 0, loud.stderr
    bad = run("--log-file", str(folder / "train.csv" / "x.log"), "evaluate", "model", "--data", "train.csv",
              cwd=folder)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --log-file") and "Traceback" not in bad.stderr


def test_python_api_logs_progress_by_default_and_verbose_false_silences_it(tmp_path):
    make_table(tmp_path, n=30).to_csv(tmp_path / "train.csv", index=False)
    script = (
        "import logging, sys\n"
        "from polymodal import Predictor\n"
        f"config = {FAST_YAML!r}\n"
        "Predictor(label='label', config=config).fit('train.csv')\n"
        "print('--- quiet', file=sys.stderr, flush=True)\n"
        "Predictor(label='label', config=config, verbose=False).fit('train.csv')\n"
        "print('--- level', file=sys.stderr, flush=True)\n"
        "logging.getLogger('polymodal').setLevel(logging.WARNING)\n"
        "Predictor(label='label', config=config).fit('train.csv')\n"
        "print('--- user', file=sys.stderr, flush=True)\n"
        "logging.getLogger('polymodal').setLevel(logging.NOTSET)\n"
        "logging.basicConfig(level=logging.INFO, format='USER %(message)s')\n"
        "Predictor(label='label', config=config).fit('train.csv')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    default, rest = result.stderr.split("--- quiet")
    quiet, rest = rest.split("--- level")
    level, user = rest.split("--- user")
    assert "Columns:" in default and "shop" in default  # the column roles, in a plain script
    assert "Columns:" not in quiet and "Columns:" not in level
    assert "USER Columns:" in user and user.count("Columns:") == 1  # the user's handler, once


def test_predict_id_columns_come_next_to_the_predictions(fitted):
    folder, model, _ = fitted
    table = pd.read_csv(folder / "train.csv")
    result = run("predict", "model", "--data", "train.csv", "--out", "pred.csv", "--id-column", "caption,shop",
                 "--chunk-rows", "7", cwd=folder)  # chunks of ids and of predictions meet across boundaries
    assert result.returncode == 0, result.stderr
    pred = pd.read_csv(folder / "pred.csv")
    assert list(pred.columns[:4]) == ["row", "caption", "shop", "predicted_label"]
    assert pred["caption"].tolist() == table["caption"].tolist() and pred["shop"].tolist() == table["shop"].tolist()
    shard = run("predict", "model", "--data", "train.csv", "--out", "part.csv", "--id-column", "shop",
                "--id-column", "size", "--shard", "1/2", cwd=folder)
    assert shard.returncode == 0, shard.stderr
    part = pd.read_csv(folder / "part.csv")
    assert part["row"].tolist() == list(range(22, 45)) and part["size"].tolist() == table["size"][22:].tolist()
    missing = run("predict", "model", "--data", "train.csv", "--out", "x.csv", "--id-column", "sku", cwd=folder)
    assert missing.returncode == 2 and "--id-column" in missing.stderr and "'sku'" in missing.stderr
    assert "Traceback" not in missing.stderr and not (folder / "x.csv").exists()


def test_evaluate_writes_the_confusion_matrix_of_the_table(fitted):
    folder, _, _ = fitted
    result = run("evaluate", "model", "--data", "train.csv", "--report-dir", "reports", cwd=folder)
    assert result.returncode == 0, result.stderr
    matrix = pd.read_csv(folder / "reports" / "confusion_matrix.csv", index_col="true")
    assert list(matrix.index) == ["blue", "green", "red"] and list(matrix.columns) == ["blue", "green", "red"]
    assert matrix.to_numpy().sum() == 45 and (matrix.sum(axis=1) == 15).all()
    assert (folder / "reports" / "confusion_matrix.png").stat().st_size > 5_000
    assert "confusion_matrix.png" in result.stdout


def test_explain_gives_each_tabular_column_its_bar(fitted):
    folder, _, _ = fitted
    result = run("explain", "model", "--data", "train.csv", "--steps", "4", "--report-dir", "why", cwd=folder)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(folder / "why" / "importance.csv", index_col="input")
    assert list(summary.index) == ["caption", "photo", "size", "shop"]
    rows = pd.read_csv(folder / "why" / "importance_rows.csv")
    assert {"ig_size", "ig_shop", "ablation_size", "ablation_shop"} <= set(rows.columns)


def test_zero_shot_command_prints_and_writes_the_scores(tmp_path):
    table = make_table(tmp_path, n=36)
    table["caption"] = [f"a {label} thing" for label in table["label"]]
    table.to_csv(tmp_path / "pairs.csv", index=False)
    config = {**FAST_YAML, "problem_type": "alignment", "label": "label",
              "columns": {"caption": "text", "photo": "image", "size": "ignore", "shop": "ignore"},
              "text": {"encoder": {"name": "gru", "embed_dim": 16, "hidden_size": 16}},
              "align": {"columns": ["caption", "photo"], "dim": 8, "match": "label"}}
    (tmp_path / "align.yaml").write_text(yaml.safe_dump(config))
    fit = run("fit", "--train", "pairs.csv", "--config", "align.yaml", "--out", "aligned", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    result = run("zero-shot", "aligned", "--data", "pairs.csv", "--column", "photo", "--classes", "red,green",
                 "--classes", "blue", "--template", "a {} thing", "--out", "scores.csv", "--id-column", "label",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["row", "label", "predicted", "red", "green", "blue"] and len(scores) == 36
    assert scores[["red", "green", "blue"]].sum(axis=1).sub(1).abs().max() < 1e-5
    assert "predicted" in result.stdout and "36 rows scored against 3 classes" in result.stderr
    for args, message in ((["--column", "size"], "aligns 'caption', 'photo'"),
                          (["--column", "photo", "--classes", " , "], "no class names"),
                          (["--column", "photo", "--template", "a photo"], "has no {}")):
        given = args if "--classes" in args else args + ["--classes", "red,blue"]
        bad = run("zero-shot", "aligned", "--data", "pairs.csv", *given, cwd=tmp_path)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
