"""The generation verb of the command line: ``polymodal generate``.

A plain function with typer annotations; ``polymodal.cli`` registers it on its app (with its
error handling). Like every command it calls the library and holds no logic of its own.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from polymodal.errors import DataError

__all__ = ["generate", "parse_conditions"]


def parse_conditions(given: list[str]) -> list[dict[str, str]]:
    """``["label=Sneaker", "label=Bag,size=2"]`` → one dict per flag (comma-separated pairs).

    Raises:
        DataError: a pair without ``=``.
    """
    rows = []
    for flag in given:
        row = {}
        for pair in flag.split(","):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise DataError(f"--condition {flag!r}: expected column=value pairs, e.g. --condition label=Sneaker")
            row[key.strip()] = value.strip()
        rows.append(row)
    return rows


def generate(
    model: Path = typer.Argument(..., help="model directory of a generation model"),
    condition: Optional[List[str]] = typer.Option(None, "--condition", help="column=value[,column=value]: one "
                                                  "condition row per flag"),
    from_table: Optional[str] = typer.Option(None, "--from", help="generate the target for every row of this table"),
    n: int = typer.Option(1, "-n", "--n", min=1, help="samples per condition row"),
    out: Path = typer.Option(..., "--out", help="folder for the files, samples.csv and the grid"),
    target: Optional[str] = typer.Option(None, "--target", help="the column to make (a multimodal VAE: which one)"),
    seed: int = typer.Option(0, "--seed", help="same seed, same samples"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the table must stay inside this folder"),
    on_bad_input: Optional[str] = typer.Option(None, "--on-bad-input", help="error | skip_row | skip_modality (default: the model's config)"),
) -> None:
    """Make new images or sounds from conditions (``--condition label=Sneaker``) or a table (``--from``)."""
    from polymodal.modeldir import load_model
    from polymodal.outputs import check_output_dir

    if (condition is None) == (from_table is None):
        raise DataError("give either --condition column=value (one or more) or --from TABLE")
    check_output_dir(out, "samples")
    conditions = parse_conditions(condition) if condition else None
    fitted = load_model(model, data_root=data_root)
    samples = fitted.generate(from_table if conditions is None else conditions, n=n, seed=seed, target=target,
                              out=out, keep_arrays=False, on_bad_input=on_bad_input)
    typer.echo(f"wrote {len(samples.table):,} {samples.target} samples to {out} "
               f"(samples.csv{', ' + samples.grid.name if samples.grid else ''})")
