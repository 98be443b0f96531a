"""The command line: ``polymodal fit | evaluate | predict | demo``.

The commands call the library and hold no logic of their own. A user error prints one
``error: ...`` line and exits with code 2, without a traceback.
"""
from __future__ import annotations

import functools
import json
import logging
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

import typer

from polymodal.errors import PolymodalError

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Multimodal deep learning: text, image, audio and tabular data in one model.")
log = logging.getLogger("polymodal")


def _errors_to_exit(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _setup_logging()
        try:
            return fn(*args, **kwargs)
        except PolymodalError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    return wrapper


def _setup_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _config_with(config: Optional[Path], **overrides) -> dict:
    from polymodal.config import load_config

    cfg = load_config(config).model_dump()
    for key, value in overrides.items():
        if value is not None:
            section, _, field = key.partition(".")
            if field:
                cfg[section][field] = value
            else:
                cfg[section] = value
    return cfg


@app.command()
@_errors_to_exit
def fit(
    train: str = typer.Option(..., "--train", help="training table (CSV/Parquet/JSONL) or class folder"),
    label: Optional[str] = typer.Option(None, "--label", help="column to predict (or label: in the config)"),
    out: Path = typer.Option(..., "--out", help="model directory to write"),
    tuning: Optional[str] = typer.Option(None, "--tuning", help="tuning table for early stopping (default: split off)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="override training.max_epochs"),
    seed: Optional[int] = typer.Option(None, "--seed", help="override seed"),
) -> None:
    """Train a model on a table and write a model directory."""
    from polymodal.predictor import Predictor

    cfg = _config_with(config, **{"training.max_epochs": epochs, "seed": seed})
    predictor = Predictor(label=label, config=cfg).fit(train, tuning_data=tuning)
    predictor.save(out)
    typer.echo(json.dumps({"model": str(out), "tuning": _short(predictor.metrics_)}))


@app.command()
@_errors_to_exit
def evaluate(
    model: Path = typer.Argument(..., help="model directory"),
    data: str = typer.Option(..., "--data", help="labelled table to evaluate on"),
    as_json: bool = typer.Option(False, "--json", help="print metrics as JSON"),
) -> None:
    """Score a saved model on a labelled table."""
    from polymodal.predictor import Predictor

    metrics = Predictor.load(model).evaluate(data)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        typer.echo(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")


@app.command()
@_errors_to_exit
def predict(
    model: Path = typer.Argument(..., help="model directory"),
    data: str = typer.Option(..., "--data", help="table to predict (label column not needed)"),
    out: Path = typer.Option(..., "--out", help="CSV to write"),
) -> None:
    """Predict a label (and one probability column per class) or a value per row."""
    import pandas as pd

    from polymodal.predictor import Predictor

    predictor = Predictor.load(model)
    prediction = predictor.predict(data)
    columns = {f"predicted_{prediction.name}": prediction}
    if predictor.schema_.problem_type == "classification":
        proba = predictor.predict_proba(data)
        columns.update({f"proba_{c}": proba[c] for c in proba.columns})
    table = pd.DataFrame(columns)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index_label="row")
    skipped = int(prediction.isna().sum())
    typer.echo(f"wrote {len(table):,} predictions to {out}" + (f" ({skipped} rows skipped)" if skipped else ""))


@app.command()
@_errors_to_exit
def demo(
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="benchmark data folder (default: $POLYMODAL_DATA)"),
    out: Path = typer.Option(Path("polymodal-demo"), "--out", help="model directory to write"),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="where the benchmark tables and images are built"),
    download: bool = typer.Option(False, "--download", help="download the FSDD recordings if they are missing"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="override training.max_epochs"),
    seed: Optional[int] = typer.Option(None, "--seed", help="override seed"),
) -> None:
    """Train and evaluate an audio+image classifier on av-digits (spoken + handwritten digits)."""
    from polymodal.data.benchmarks import build_av_digits, data_root
    from polymodal.predictor import Predictor

    start = time.perf_counter()
    root = data_root(data_dir)
    work = work_dir or Path.home() / ".cache" / "polymodal" / "av-digits"
    tables = build_av_digits(root, work, download=download)
    config_path = resources.files("polymodal") / "configs" / "av_digits.yaml"
    cfg = _config_with(Path(str(config_path)), **{"training.max_epochs": epochs, "seed": seed})
    predictor = Predictor(config=cfg).fit(tables["train"], tuning_data=tables["val"])
    test = predictor.evaluate(tables["test"], record_as="test")
    predictor.save(out)
    seconds = time.perf_counter() - start
    typer.echo(
        f"av-digits test (speakers never heard in training): accuracy {test['accuracy']:.2%}, "
        f"macro-F1 {test['f1_macro']:.4f} on {test['n']:,} pairs\n"
        f"trained {predictor.fit_info_['epochs']} epochs, {predictor.fit_info_['parameters']:,} parameters; "
        f"total {seconds:.1f}s\n"
        f"model directory: {out}  (plots: {out / 'plots'})"
    )


def _short(metrics: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def main() -> None:
    app()


if __name__ == "__main__":
    main()
