"""``polymodal export``: a plain function with typer annotations; ``polymodal.cli`` registers it
(with its error handling). It loads a model directory and calls ``export.export_onnx``."""
from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["export"]


def export(
    model: Path = typer.Argument(..., help="model directory"),
    out: Path = typer.Option(..., "--out", help="the .onnx file to write (outside the model directory); "
                             "its inputs and outputs are described in <out>.json"),
) -> None:
    """Write the trained network (encoders, fusion, head) as an ONNX graph with a free batch size.

    Preprocessing stays polymodal's: run the graph with Predictor.load(DIR, runtime="onnx",
    onnx=OUT) or `polymodal serve DIR --runtime onnx`.
    """
    from polymodal.export.onnx import check_export_path, description_path, export_onnx
    from polymodal.modeldir import load_model

    check_export_path(out, model)
    description = export_onnx(load_model(model), out, model)
    shown = [f"  {e['name']}: {e['dtype']}[{', '.join(map(str, e['shape']))}]" for e in description["inputs"]]
    result = description["outputs"][0]
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; {description['exporter']} exporter; largest "
               f"difference from PyTorch on a check batch {description['check']['max_abs_difference']:.1e}) and "
               f"{description_path(out)}\ninputs:\n" + "\n".join(shown) +
               f"\noutput:\n  {result['name']}: {result['dtype']}[{', '.join(map(str, result['shape']))}]")
