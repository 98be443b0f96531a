"""The command line: ``polymodal fit | evaluate | explain | demo``, ``predict`` (in
``predict_command``), ``embed | index | search | zero-shot`` (in ``retrieval.commands``),
``generate`` (``samples.commands``) and ``serve`` (``serving.commands``); the global options
(``--version``, ``--quiet``, ``--log-file``) in the app's callback, their logging in ``cli_logging``.

The commands call the library and hold no logic of their own. A user error prints one
``error: ...`` line and exits with code 2, without a traceback.
"""
from __future__ import annotations

import functools
import logging
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

import typer

from polymodal import predict_command
from polymodal.errors import PolymodalError

__all__ = ["app", "main"]

# rich_markup_mode=None: click's own help layout, in which a flag shows as a flag (typer's rich
# layout prints every bool option, flags and --help too, as "--resume <bool>").
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Multimodal deep learning: text, image, audio and tabular data in one model.")
log = logging.getLogger("polymodal")


def _errors_to_exit(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PolymodalError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    return wrapper


def _show_version(value: bool) -> None:
    if value:
        from polymodal._version import __version__

        typer.echo(f"polymodal {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="print the version and exit"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and errors on stderr (no progress)"),
    log_file: Optional[Path] = typer.Option(None, "--log-file", help="also append the log lines (with times) to this file"),
) -> None:
    """Multimodal deep learning: text, image, audio and tabular data in one model.

    Global options go before the command: polymodal --quiet --log-file run.log fit ...
    """
    from polymodal.cli_logging import configure_logging

    try:
        ctx.call_on_close(configure_logging(quiet=quiet, log_file=log_file))
    except PolymodalError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _config_with(config: Optional[Path], **overrides) -> dict:
    from polymodal.config import load_config

    # Only the keys set (in the file, or by a preset): the fit tells them from defaults (table_defaults).
    cfg = load_config(config).model_dump(exclude_unset=True)
    for key, value in overrides.items():
        if value is not None:
            section, _, field = key.partition(".")
            if field:
                cfg.setdefault(section, {})[field] = value
            else:
                cfg[section] = value
    return cfg


@app.command()
@_errors_to_exit
def fit(
    train: str = typer.Option(..., "--train", help="training table (CSV/Parquet/JSONL) or class folder"),
    label: Optional[list[str]] = typer.Option(None, "--label", help="column to predict (or label: in the config); "
                                              "repeat it for several labels in one model"),
    out: Path = typer.Option(..., "--out", help="model directory to write"),
    tuning: Optional[str] = typer.Option(None, "--tuning", help="tuning table for early stopping (default: split off)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="override training.max_epochs"),
    seed: Optional[int] = typer.Option(None, "--seed", help="override seed"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted run from its last epoch checkpoint"),
    checkpoint_dir: Optional[Path] = typer.Option(None, "--checkpoint-dir", help="per-epoch checkpoints (default: <out>.partial, deleted once the model is saved)"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the tables must stay inside this folder"),
    accelerator: Optional[str] = typer.Option(None, "--accelerator", help="auto | cpu | gpu (training.accelerator)"),
    devices: Optional[int] = typer.Option(None, "--devices", help="processes or GPUs per machine; >1 trains with DDP"),
    num_nodes: Optional[int] = typer.Option(None, "--num-nodes", help="machines (started by torchrun / SLURM)"),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="auto | ddp (training.strategy)"),
    allow_urls: bool = typer.Option(False, "--allow-urls", help="image and audio cells may be URLs (allow_urls)"),
) -> None:
    """Train a model on a table and write a model directory (several processes: docs/distributed.md)."""
    from polymodal.cli_logging import quiet
    from polymodal.distributed import is_rank_zero
    from polymodal.outputs import check_output_folder, finite_json
    from polymodal.predictor import Predictor
    from polymodal.training.resume import default_checkpoint_dir, discard_run

    if is_rank_zero():  # the other processes of a DDP run find rank 0's folder being written
        check_output_folder(out, "model directory")
    cfg = _config_with(config, **{"training.max_epochs": epochs, "seed": seed, "training.accelerator": accelerator,
                                  "training.devices": devices, "training.num_nodes": num_nodes,
                                  "training.strategy": strategy, "training.progress_bar": False if quiet() else None,
                                  "allow_urls": True if allow_urls else None})
    checkpoints = checkpoint_dir or default_checkpoint_dir(out)
    labels = (label[0] if len(label) == 1 else list(label)) if label else None
    predictor = Predictor(label=labels, config=cfg, data_root=data_root).fit(
        train, tuning_data=tuning, checkpoint_dir=checkpoints, resume=resume)
    try:
        predictor.save(out)
    except PolymodalError as exc:  # the trained run is not lost: its last checkpoint is still there
        raise type(exc)(f"{exc} The trained run is kept in {checkpoints}: fix that and rerun the same command "
                        "with --resume to continue from its last checkpoint.") from None
    if is_rank_zero():
        discard_run(checkpoints)
        typer.echo(finite_json({"model": str(out), "tuning": _short(predictor.metrics_)}))


@app.command()
@_errors_to_exit
def evaluate(
    model: Path = typer.Argument(..., help="model directory"),
    data: str = typer.Option(..., "--data", help="labelled table to evaluate on"),
    as_json: bool = typer.Option(False, "--json", help="print metrics as JSON"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the table must stay inside this folder"),
    on_bad_input: Optional[str] = typer.Option(None, "--on-bad-input", help="error | skip_row | skip_modality (default: the model's config)"),
    robustness: bool = typer.Option(False, "--robustness", help="also score with each input removed and under noise"),
    report_dir: Optional[Path] = typer.Option(None, "--report-dir", help="write the confusion matrix of the table "
                                              "(classification: plot + CSV) and --robustness's table and plot here "
                                              "(default for --robustness: polymodal-reports)"),
    reference: Optional[Path] = typer.Option(None, "--reference", help="generation: a classifier model directory of the generated column"),
    train: Optional[str] = typer.Option(None, "--train", help="generation: the real training table (trains the reference; CAS conditions)"),
    allow_urls: Optional[bool] = typer.Option(None, "--allow-urls/--no-allow-urls", help="image and audio cells may "
                                              "(may not) be URLs, read over the network (default: the model's config)"),
) -> None:
    """Score a saved model on a labelled table (a generation model: its samples, with a reference classifier)."""
    from polymodal.cli_reports import write_confusion, write_robustness
    from polymodal.outputs import check_output_dir, finite_json
    from polymodal.predictor import Predictor

    if robustness or report_dir is not None:
        report_dir = check_output_dir(report_dir or Path("polymodal-reports"),
                                      "robustness report" if robustness else "evaluation report")
    predictor = Predictor.load(model, data_root=data_root, allow_urls=allow_urls)
    if robustness:
        write_robustness(predictor, data, report_dir, as_json, model, on_bad_input)
        return
    written = ""
    if reference is not None or train is not None:
        metrics = predictor.evaluate_samples(data, reference=None if reference is None else Predictor.load(reference),
                                             train=train)
    elif report_dir is not None:
        report = predictor.evaluate_report(data, on_bad_input=on_bad_input)
        metrics, written = report.metrics, write_confusion(predictor, report, report_dir, model, data)
    else:
        metrics = predictor.evaluate(data, on_bad_input=on_bad_input)
    if as_json:
        typer.echo(finite_json(metrics, indent=2))
        return
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        typer.echo(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if written:
        typer.echo(written)


# predict lives in its own module: it reads, decodes and writes large tables a chunk at a time.
app.command()(_errors_to_exit(predict_command.predict))


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
    from polymodal.cli_logging import quiet
    from polymodal.datasets.av_digits import build_av_digits
    from polymodal.datasets.root import data_root
    from polymodal.outputs import check_output_folder
    from polymodal.predictor import Predictor

    check_output_folder(out, "model directory")
    start = time.perf_counter()
    root = data_root(data_dir)
    work = work_dir or Path.home() / ".cache" / "polymodal" / "av-digits"
    tables = build_av_digits(root, work, download=download)
    config_path = resources.files("polymodal") / "configs" / "av_digits.yaml"
    cfg = _config_with(Path(str(config_path)), **{"training.max_epochs": epochs, "seed": seed,
                                                  "training.progress_bar": False if quiet() else None})
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


@app.command()
@_errors_to_exit
def explain(
    model: Path = typer.Argument(..., help="model directory"),
    data: str = typer.Option(..., "--data", help="table whose rows to explain (label column optional)"),
    report_dir: Path = typer.Option(Path("polymodal-reports"), "--report-dir", help="where to write the tables and the chart"),
    steps: int = typer.Option(32, "--steps", min=2, help="integration steps of integrated gradients"),
    as_json: bool = typer.Option(False, "--json", help="print the global importance as JSON"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the table must stay inside this folder"),
) -> None:
    """Importance of each input, globally and per row: ablation and integrated gradients."""
    from polymodal.outputs import check_output_dir
    from polymodal.predictor import Predictor
    from polymodal.reports import plot_importance

    check_output_dir(report_dir, "explanation report")
    importance = Predictor.load(model, data_root=data_root).explain(data, n_steps=steps)
    report_dir.mkdir(parents=True, exist_ok=True)
    importance.summary.to_csv(report_dir / "importance.csv")
    importance.rows.to_csv(report_dir / "importance_rows.csv", index_label="row")
    plot_importance(importance.summary, report_dir / "importance.png", title=f"{model.name} on {Path(data).name}")
    if as_json:
        typer.echo(importance.summary.reset_index().to_json(orient="records", indent=2))
        return
    typer.echo(importance.summary.to_string(float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"({len(importance.rows):,} rows; IG convergence delta {importance.ig_convergence_delta:.1e}) "
               f"global: {report_dir / 'importance.csv'}  per row: {report_dir / 'importance_rows.csv'}  "
               f"chart: {report_dir / 'importance.png'}")


def _short(metrics: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


# embed | index | search | zero-shot live with the rest of retrieval (polymodal.retrieval.commands).
from polymodal.samples import commands as _generation  # noqa: E402
from polymodal.retrieval import commands as _retrieval  # noqa: E402
from polymodal.serving import commands as _serving  # noqa: E402
from polymodal.export import commands as _export  # noqa: E402
from polymodal.tune import commands as _tune  # noqa: E402

for _command in (_retrieval.embed, _retrieval.index, _retrieval.search, _retrieval.zero_shot, _generation.generate,
                 _serving.serve, _export.export, _tune.tune):
    app.command()(_errors_to_exit(_command))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
