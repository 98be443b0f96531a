"""Every fusion against single-modality models on av-digits (audio+image) and emoji (image+name).

av-digits: every registered fusion, concat trained with ``modality_dropout``, audio-only and
image-only; emoji (predict the group): every fusion, image-only and text-only; each with
``--seeds`` seeds (default 0 1 2). Each run trains on the benchmark's train split, keeps the
best val-loss epoch and is scored on test; the table gives test accuracy mean ± std over
seeds, mean training time (fit, including decoding the inputs) and the parameter count. On
av-digits each two-input model is scored again with the image, then the audio, missing from
every test row. ``--dropout-figure`` writes the robustness figure (noise per input, then the
input removed) of the seed-0 concat models with and without modality dropout, next to the
audio-only model (all three must be among the runs).

Encoders: av-digits trains small CNN encoders from scratch; emoji fine-tunes
all-MiniLM-L6-v2 on the name and uses ImageNet EfficientNet-Lite0, frozen, on the image (its
features cached after the first run); both need the ``minilm`` and ``efficientnet`` extras.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/fusion.py --dropout-figure

Results are appended to ``<work-dir>/results.jsonl`` as runs finish (each model saved under
``<work-dir>/models/``), and a run already there (same benchmark, model, seed and config) is
not trained again, so an interrupted bench resumes. ``--write docs/benchmarks.md`` replaces
the "Fusion" section of that file (other sections are kept) with the tables, the command and
``--date``.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from polymodal import Predictor
from polymodal.datasets.av_digits import build_av_digits
from polymodal.datasets.root import data_root
from polymodal.datasets.emoji import build_emoji
from polymodal.fusion import FUSIONS

TRAINING = {"progress_bar": False, "precision": "32"}

AV_DIGITS: dict[str, Any] = {
    "label": "label",
    "columns": {"audio": "audio", "image": "image", "speaker": "ignore"},
    "image": {"preprocess": {"size": 16, "grayscale": True}, "encoder": {"name": "cnn", "channels": [32, 64]}},
    # A VGG-style CNN, 4 blocks of 2 convs, over 40 log-mel bins with SpecAugment: deep enough to see
    # the whole word (its receptive field spans ~0.5 s), which is what carries it to unseen speakers.
    "audio": {"preprocess": {"sample_rate": 8000, "max_seconds": 1.0, "n_mels": 40, "n_fft": 256, "hop_length": 80,
                             "win_length": 200},
              "encoder": {"name": "cnn", "channels": [16, 32, 64, 128], "convs_per_block": 2, "pooling": "meanmax"}},
    "head": {"label_smoothing": 0.1},
    # No early stop: val comes from the training speakers and saturates; the best val-loss epoch is kept.
    "training": {"max_epochs": 20, "batch_size": 64, "learning_rate": 0.003, "weight_decay": 0.05, "patience": 20,
                 **TRAINING},
}
EMOJI: dict[str, Any] = {
    "label": "label",
    "columns": {"image": "image", "name": "text"},
    # ImageNet EfficientNet-Lite0, frozen: its pooled features are computed once and cached.
    "image": {"backbone": "efficientnet_lite0", "tuning": {"mode": "frozen", "cache": "pooled"}},
    # all-MiniLM-L6-v2 fine-tuned (the settings of examples/minilm.yaml).
    "text": {"backbone": "minilm", "tuning": {"mode": "full", "learning_rate": 1e-4, "layer_lr_decay": 0.9,
                                              "pooling": "mean", "cache": "off"}},
    "training": {"max_epochs": 5, "batch_size": 32, "learning_rate": 0.001, "warmup_fraction": 0.1,
                 "scheduler": "linear", "weight_decay": 0.05, "patience": 3, "monitor": "val_accuracy",
                 **TRAINING, "precision": "auto"},
}
DROPOUT = 0.5  # av-digits "concat, modality_dropout": the train-time probability of hiding each input
SINGLE = {"av-digits": {"audio-only": "image", "image-only": "audio"},
          "emoji": {"image-only": "name", "text-only": "image"}}  # model → the column it ignores


def variants(bench: str, fusions: list[str], dropout: float = DROPOUT) -> dict[str, dict[str, Any]]:
    """Model name → config for one benchmark: each fusion (its default options), on av-digits also
    concat trained with ``modality_dropout``, then the single-input models."""
    base = AV_DIGITS if bench == "av-digits" else EMOJI
    out = {}
    for name in fusions:
        config = copy.deepcopy(base)
        config["fusion"] = {"name": name}
        out[name] = config
    if bench == "av-digits" and "concat" in fusions:
        config = copy.deepcopy(out["concat"])
        config["training"]["modality_dropout"] = dropout
        out[dropout_name(dropout)] = config
    for model, ignored in SINGLE[bench].items():
        config = copy.deepcopy(base)
        config["columns"] = {**config["columns"], ignored: "ignore"}
        config["fusion"] = {"name": "concat"}
        out[model] = config
    return out


def dropout_name(p: float) -> str:
    return f"concat, modality_dropout {p:g}"


def _key(bench: str, model: str, seed: int, config: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    return f"{bench}/{model}/{seed}/{digest}"


def train_one(tables: dict[str, Path], config: dict[str, Any], seed: int, cache_dir: Path,
              remove: tuple[str, ...] = ()) -> tuple[Predictor, dict]:
    """Fit on train (val for early stopping), score on test; ``remove``: the input columns each
    scored again with that column emptied for every test row (the input missing at test time)."""
    config = {**config, "seed": seed, "training": {**config["training"], "cache_dir": str(cache_dir)}}
    start = time.perf_counter()
    predictor = Predictor(config=config, verbose=False).fit(tables["train"], tuning_data=tables["val"])
    seconds = time.perf_counter() - start
    test = predictor.evaluate(tables["test"])
    result = {"accuracy": test["accuracy"], "seconds": round(seconds, 1),
              "epochs": predictor.fit_info_["epochs"], "parameters": predictor.fit_info_["parameters"]}
    used = [c for c in remove if config["columns"].get(c) != "ignore"]
    if len(used) > 1:
        frame, result["removed"] = pd.read_csv(tables["test"]), {}
        for column in used:  # beside the test table, so its relative paths still resolve
            path = tables["test"].with_name(f"{tables['test'].stem}-no-{column}.csv")
            frame.assign(**{column: None}).to_csv(path, index=False)
            result["removed"][column] = predictor.evaluate(path)["accuracy"]
    return predictor, result


def model_dir(work_dir: Path, key: str) -> Path:
    return work_dir / "models" / key.replace("/", "__").replace(", ", "_").replace(" ", "_")


def run_bench(bench: str, tables: dict[str, Path], models: dict[str, dict], seeds: list[int],
              work_dir: Path) -> list[dict]:
    """Train what ``results.jsonl`` lacks (saving each model under ``models/``); one record per run."""
    results_path, cache_dir = work_dir / "results.jsonl", work_dir / "feature-cache"
    remove = ("audio", "image") if bench == "av-digits" else ()
    done = {}
    if results_path.is_file():
        for line in results_path.read_text().splitlines():
            record = json.loads(line)
            done[record["key"]] = record
    rows = []
    for model, config in models.items():
        for seed in seeds:
            key = _key(bench, model, seed, config)
            if key not in done:
                predictor, result = train_one(tables, config, seed, cache_dir, remove)
                predictor.save(model_dir(work_dir, key))
                done[key] = {"key": key, "bench": bench, "model": model, "seed": seed, **result}
                with results_path.open("a") as handle:
                    handle.write(json.dumps(done[key]) + "\n")
            record = done[key]
            removed = "".join(f", {c} removed {a:.2%}" for c, a in record.get("removed", {}).items())
            print(f"{bench:9s} {model:16s} seed {seed}: test accuracy {record['accuracy']:.2%}{removed}, "
                  f"{record['seconds']:.0f}s, {record['epochs']} epochs, {record['parameters']:,} parameters",
                  flush=True)
            rows.append(record)
    return rows


def summarise(rows: list[dict]) -> pd.DataFrame:
    out = []
    for (bench, model), group in pd.DataFrame(rows).groupby(["bench", "model"], sort=False):
        accs = group["accuracy"].tolist()
        out.append({"benchmark": bench, "model": model, "seeds": len(accs), "mean": statistics.mean(accs),
                    "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "seconds": statistics.mean(group["seconds"]), "parameters": int(group["parameters"].iloc[0])})
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame) -> str:
    lines = ["| benchmark | model | test accuracy (mean ± std) | seeds | train time (s, mean) | parameters |",
             "|---|---|---|---|---|---|"]
    for row in summary.itertuples():
        lines.append(f"| {row.benchmark} | {row.model} | {row.mean:.2%} ± {row.std:.2%} | {row.seeds} | "
                     f"{row.seconds:.0f} | {row.parameters:,} |")
    return "\n".join(lines)


def removed_markdown(rows: list[dict]) -> str:
    """Markdown: av-digits test accuracy with each input emptied for every test row, mean ± std over seeds."""
    def cell(values: list[float]) -> str:
        if not values:
            return "—"
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2%} ± {std:.2%}"

    frame = pd.DataFrame([r for r in rows if r["bench"] == "av-digits"])
    lines = ["| model | seeds | clean | image removed | audio removed |", "|---|---|---|---|---|"]
    for model, group in frame.groupby("model", sort=False):
        removed = [r for r in group.get("removed", pd.Series(dtype=object)) if isinstance(r, dict)]
        lines.append(f"| {model} | {len(group)} | {cell(group['accuracy'].tolist())} | "
                     f"{cell([r['image'] for r in removed])} | {cell([r['audio'] for r in removed])} |")
    return "\n".join(lines)


def dropout_figure(tables: dict[str, Path], seed: int, work_dir: Path, out: Path, p: float) -> pd.DataFrame:
    """av-digits concat with and without modality dropout, and audio-only (the models ``run_bench``
    saved for ``seed``): the robustness report of each, and its figure."""
    from polymodal.reports import robustness_report

    models = variants("av-digits", ["concat"], p)
    reports = {}
    for label, model in ((dropout_name(p), dropout_name(p)), ("concat, no modality dropout", "concat"),
                         ("audio-only", "audio-only")):
        predictor = Predictor.load(model_dir(work_dir, _key("av-digits", model, seed, models[model])))
        report = robustness_report(predictor, tables["test"])
        report.insert(0, "model", label)
        reports[label] = report
    frame = pd.concat(reports.values(), ignore_index=True)
    _plot_dropout(frame, out)
    return frame


def dropout_table(frame: pd.DataFrame, seed: int) -> str:
    """Markdown: per model, test accuracy clean, with the image removed, with the audio removed."""
    def value(model: str, condition: str, name: str | None = None) -> str:
        part = frame[(frame.model == model) & (frame.condition == condition)]
        if name is not None:
            part = part[part.input == name]
        return f"{part.value.iloc[0]:.2%}" if len(part) else "—"

    lines = [f"| model (seed {seed}) | clean | image removed | audio removed |", "|---|---|---|---|"]
    for model in frame.model.unique():
        lines.append(f"| {model} | {value(model, 'clean')} | {value(model, 'removed', 'image')} | "
                     f"{value(model, 'removed', 'audio')} |")
    return "\n".join(lines)


def _plot_dropout(frame: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, noised in zip(axes, ("audio", "image")):
        levels = frame[(frame.input == noised) & (frame.condition == "noise")].sort_values("severity")
        levels = levels.drop_duplicates("severity")  # the x axis: every model is noised alike
        for model, part in frame.groupby("model", sort=False):
            clean = part.loc[part.condition == "clean", "value"].iloc[0]
            noise = part[(part.input == noised) & (part.condition == "noise")].sort_values("severity")
            if model == "audio-only" and noised == "image":
                ax.axhline(clean, color="grey", linestyle=":", label="audio-only (clean)")
                continue
            ax.plot(range(len(noise) + 1), [clean, *noise.value], marker="o", label=model)
            removed = part[(part.input == noised) & (part.condition == "removed")]
            if len(removed) and model != "audio-only":
                ax.scatter([len(noise) + 1], removed.value, marker="x", s=60)
        ax.set_xticks(range(len(levels) + 2))
        ax.set_xticklabels(["clean", *[f"{v:g}" for v in levels.level], "removed"])
        ax.set_xlabel(levels.noise.iloc[0])
        ax.set_title(f"av-digits test: {noised} noised, then removed")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_section(path: Path, body: str) -> None:
    """Replace the ``## Fusion`` section of ``path`` (up to the next ``## ``), keeping the rest."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("## Fusion")), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "\n".join(lines[:start] + body.rstrip("\n").splitlines() + ([""] + lines[end:] if end < len(lines) else [])) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="default: $POLYMODAL_DATA")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "polymodal" / "bench-fusion")
    parser.add_argument("--bench", nargs="+", choices=["av-digits", "emoji"], default=["av-digits", "emoji"])
    parser.add_argument("--models", nargs="+", default=None, help="only these (fusion names, audio-only, ...)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--dropout-figure", action="store_true", help="also the modality-dropout robustness figure")
    parser.add_argument("--dropout", type=float, default=DROPOUT, help="modality_dropout of the av-digits "
                        "'concat, modality_dropout' model")
    parser.add_argument("--write", type=Path, default=None, help="write the table into this markdown file")
    parser.add_argument("--date", default=time.strftime("%Y-%m-%d"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)

    root = data_root(args.data_dir)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for bench in args.bench:
        tables = (build_av_digits(root, args.work_dir / "av-digits") if bench == "av-digits"
                  else build_emoji(root, args.work_dir / "emoji"))
        models = variants(bench, sorted(FUSIONS), args.dropout)
        if args.models:
            models = {k: v for k, v in models.items() if k in args.models}
        rows += run_bench(bench, tables, models, args.seeds, args.work_dir)
    summary = summarise(rows)
    print(markdown(summary))
    removed_text = removed_markdown(rows) if "av-digits" in args.bench else ""
    print(removed_text)
    figure_text = ""
    if args.dropout_figure:
        tables = build_av_digits(root, args.work_dir / "av-digits")
        figure = Path("docs/figures/fusion_modality_dropout.png")
        frame = dropout_figure(tables, args.seeds[0], args.work_dir, figure, args.dropout)
        frame.to_csv(args.work_dir / "dropout_robustness.csv", index=False)
        figure_text = dropout_table(frame, args.seeds[0])
        print(figure_text)
    if args.write:
        command = "POLYMODAL_DATA=../shared/data .venv/bin/python bench/fusion.py " + " ".join(sys.argv[1:])
        body = [f"## Fusion (bench/fusion.py, {args.date})", "",
                f"`{command}`", "",
                "Test accuracy on the fixed test splits (av-digits: speakers never heard in training; "
                "emoji: base emoji never seen in training), mean ± sample std over seeds; train time is "
                "the wall time of `fit` (decoding included; emoji: EfficientNet features already in "
                "the feature cache) on the 2-core CPU. Every fusion runs with its default options; "
                "the configs are `AV_DIGITS` and `EMOJI` in `bench/fusion.py`.", "",
                markdown(summary)]
        if removed_text:
            body += ["", "av-digits with one input missing at test time (its column emptied for every test "
                     "row; the model gets the learned stand-in for a missing input), mean ± std over the same "
                     "seeds:", "", removed_text]
        if figure_text:
            body += ["", f"Modality dropout ({args.dropout}) on av-digits, concat fusion, the robustness report "
                     "on the test split (`polymodal evaluate --robustness`); figure: "
                     "`docs/figures/fusion_modality_dropout.png`.", "", figure_text]
        write_section(args.write, "\n".join(body))


if __name__ == "__main__":
    main()
