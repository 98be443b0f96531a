"""Several labels in one model: the emoji's group and subgroup from its image and name.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/multioutput.py

One polymodal model with ``label: [group, subgroup]`` (one trunk, a head each) against two
separate models (``label: group``, ``label: subgroup``), all with the default settings, on the
emoji benchmark's splits (val: early stopping). Prints each target's test accuracy and macro-F1
for both, and the training time of the one model against the two together; with several
``--seeds``, each seed's line and then the means (one seed's run moves a target by about two
points: compare means).
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import pandas as pd

from polymodal import Predictor
from polymodal.datasets.emoji import build_emoji
from polymodal.datasets.root import data_root

TARGETS = ("group", "subgroup")


def tables(work: Path) -> dict[str, Path]:
    """The emoji tables with ``group`` and ``subgroup`` (``build_emoji``'s rows, in its order)."""
    root = data_root(os.environ.get("POLYMODAL_DATA"))
    rendered = build_emoji(root, work)
    splits = pd.read_csv(root / "emoji" / "splits.csv", dtype=str, keep_default_na=False)
    out = {}
    for split, path in rendered.items():
        frame = pd.read_csv(path).drop(columns=["label"])
        meta = splits[splits["split"] == split].reset_index(drop=True)
        out[split] = work / f"groups-{split}.csv"
        frame.assign(group=meta["group"], subgroup=meta["subgroup"]).to_csv(out[split], index=False)
    return out


def fit(label, paths: dict[str, Path], work: Path, seed: int) -> tuple[dict, float, int]:
    start = time.perf_counter()
    ignored = {t: "ignore" for t in TARGETS if t != label and not isinstance(label, list)}
    predictor = Predictor(config={"label": label, "seed": seed, "columns": ignored,
                                  "training": {"progress_bar": False}}, data_root=work)
    predictor.fit(paths["train"], tuning_data=paths["val"])
    seconds = time.perf_counter() - start
    return predictor.evaluate(paths["test"]), seconds, predictor.fit_info_["epochs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "polymodal" / "emoji")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    logging.getLogger("polymodal").setLevel(logging.WARNING)
    paths = tables(args.work_dir)
    print(f"train {len(pd.read_csv(paths['train'])):,} / val {len(pd.read_csv(paths['val'])):,} / "
          f"test {len(pd.read_csv(paths['test'])):,} emoji")
    runs = []
    for seed in args.seeds:
        both, both_seconds, both_epochs = fit(list(TARGETS), paths, args.work_dir, seed)
        print(f"seed {seed}: one model, label: [group, subgroup]: {both_epochs} epochs, {both_seconds:.1f}s")
        run = {"one seconds": both_seconds, "separate seconds": 0.0}
        for target in TARGETS:
            alone, seconds, epochs = fit(target, paths, args.work_dir, seed)
            run["separate seconds"] += seconds
            run[f"one {target}"], run[f"separate {target}"] = both[f"{target}.accuracy"], alone["accuracy"]
            gap = 100 * (both[f"{target}.accuracy"] - alone["accuracy"])
            print(f"seed {seed}: {target:<9} one model accuracy {both[f'{target}.accuracy']:.4f} (macro-F1 "
                  f"{both[f'{target}.f1_macro']:.4f})   separate {alone['accuracy']:.4f} (macro-F1 "
                  f"{alone['f1_macro']:.4f}; {epochs} epochs, {seconds:.1f}s)   difference {gap:+.1f} points")
        print(f"seed {seed}: training time: one model {both_seconds:.1f}s, two separate models "
              f"{run['separate seconds']:.1f}s ({both_seconds / run['separate seconds']:.2f}x); unknown test "
              f"labels left out: {both['n_unknown_label']}", flush=True)
        runs.append(run)
    mean = pd.DataFrame(runs).mean()
    print(f"mean over {len(runs)} seed(s):")
    for target in TARGETS:
        gap = 100 * (mean[f"one {target}"] - mean[f"separate {target}"])
        print(f"  {target:<9} one model {mean[f'one {target}']:.4f}   separate {mean[f'separate {target}']:.4f}"
              f"   difference {gap:+.1f} points")
    print(f"  training time: one model {mean['one seconds']:.1f}s, two separate models "
          f"{mean['separate seconds']:.1f}s ({mean['one seconds'] / mean['separate seconds']:.2f}x)")


if __name__ == "__main__":
    main()
