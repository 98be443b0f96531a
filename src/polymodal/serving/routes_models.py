"""``/v1/models``: list, predict, explain, embed and generate. Each handler checks the request,
hands the rows to the library in the model's own thread, and reshapes what comes back."""
from __future__ import annotations

import asyncio
import functools
import tempfile
from pathlib import Path
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

import polymodal.serving.answers as answers
from polymodal.serving.problems import Problem
from polymodal.serving.registry import Registry, ServedModel
from polymodal.serving.rows import build_frame, integer, off_loop, read_body, text_field
from polymodal.serving.schemas import rows_body
from polymodal.serving.settings import ServeSettings
from polymodal.serving.uploads import media_type

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["models"])


def _state(request: Request) -> tuple[Registry, ServeSettings]:
    return request.app.state.registry, request.app.state.settings


async def _in_model_thread(served: ServedModel, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(served.executor, functools.partial(fn, *args, **kwargs))


async def _rows(request: Request, served: ServedModel, settings: ServeSettings, key: str = "rows") -> tuple:
    body = await read_body(request, settings.limits, json_fields=(key,))
    label = served.fitted.schema.label
    frame = await off_loop(body, build_frame, served.columns, body, settings.limits, key, (label,) if label else ())
    return frame, body.fields


@router.get("", summary="The models served: inputs, classes, metrics, version, manifest checksum")
async def list_models(request: Request) -> dict[str, Any]:
    registry, _ = _state(request)
    return {"models": [answers.finite(m.describe()) for m in registry.models.values()]}


@router.post("/{name}/predict", summary="Predict rows: label, probabilities, absent and skipped inputs",
             openapi_extra=rows_body("rows", "the rows to predict"))
async def predict(name: str, request: Request) -> dict[str, Any]:
    registry, settings = _state(request)
    served = registry.model(name)
    served.fitted.check_predicts()
    async with served.batcher.announce():
        frame, _ = await _rows(request, served, settings)
        rows = await served.batcher.submit(frame)
    # already plain JSON values (answers.finite): FastAPI's generic encoder has nothing to do
    return JSONResponse({"model": name, "predictions": rows})


@router.post("/{name}/explain", summary="Modality importance (ablation, integrated gradients) for the rows sent",
             openapi_extra=rows_body("rows", "the rows to explain", {"steps": {"type": "integer", "minimum": 2,
                                                                               "maximum": 256}}))
async def explain(name: str, request: Request) -> dict[str, Any]:
    from polymodal.explain import explain as explain_rows

    registry, settings = _state(request)
    served = registry.model(name)
    served.fitted.check_predicts()
    frame, fields = await _rows(request, served, settings)
    steps = integer(fields, "steps", 32, 2, 256)
    result = await _in_model_thread(served, explain_rows, served.fitted, frame, n_steps=steps)
    return {"model": name, **answers.importance(result)}


@router.post("/{name}/embed", summary="A unit vector per row for one text, image or audio column",
             openapi_extra=rows_body("rows", "the rows to embed", {"column": {"type": "string"}}, ["column"]))
async def embed(name: str, request: Request) -> dict[str, Any]:
    from polymodal.retrieval.embed import embed_column

    registry, settings = _state(request)
    served = registry.model(name)
    frame, fields = await _rows(request, served, settings)
    column = text_field(fields, "column", required=True)
    result = await _in_model_thread(served, embed_column, served.fitted, frame, column, on_bad_input=answers.POLICY)
    return {"model": name, **answers.embeddings(result)}


@router.post("/{name}/generate", summary="Samples of a generation model (PNG images, WAV clips)",
             openapi_extra=rows_body("conditions", "the condition rows", {
                 "n": {"type": "integer", "minimum": 1, "maximum": 64}, "seed": {"type": "integer"},
                 "target": {"type": "string"}, "format": {"type": "string", "enum": ["json", "file"]}}),
             responses={200: {"content": {"application/json": {}, "image/png": {}, "audio/wav": {}},
                              "description": "JSON with base64 files, or one file with format: file"}})
async def generate(name: str, request: Request) -> Any:
    registry, settings = _state(request)
    served = registry.model(name)
    if served.fitted.labels.get("targets") is None:
        raise Problem(422, f"model {name!r} is a {served.fitted.schema.problem_type} model: it generates nothing; "
                           "generate is for models fitted with problem_type: generation")
    body = await read_body(request, settings.limits, json_fields=("conditions",))
    body.fields.setdefault("conditions", [{}])
    # not filled: a multimodal VAE makes the one column the rows lack
    frame = await off_loop(body, build_frame, served.columns, body, settings.limits, "conditions", (), False)
    n = integer(body.fields, "n", 1, 1, settings.limits.samples)
    seed = integer(body.fields, "seed", 0, 0, 2**31 - 1)
    target, kind = text_field(body.fields, "target"), text_field(body.fields, "format") or "json"
    if kind not in ("json", "file"):
        raise Problem(422, f"'format' must be json or file, got {kind!r}")
    if len(frame) * n > settings.limits.samples:
        raise Problem(413, f"{len(frame)} condition rows x n={n} is {len(frame) * n:,} samples, over the limit of "
                           f"{settings.limits.samples:,}")
    with tempfile.TemporaryDirectory(prefix="polymodal-samples-") as folder:
        made = await _in_model_thread(served, served.fitted.generate, frame, n=n, seed=seed, target=target,
                                      out=folder, keep_arrays=False, on_bad_input=answers.POLICY)
        if not made.files:
            raise Problem(422, "no sample was made: every condition row was skipped (see the server log)")
        first = made.files[0].read_bytes()
        kind_of_file = media_type(first)
        if kind == "file":
            if len(made.files) != 1:
                raise Problem(422, f"format: file returns one sample; this request makes {len(made.files)}: "
                                   "send one condition row with n: 1, or use format: json")
            return Response(first, media_type=kind_of_file)
        samples = answers.samples(made, Path(folder), kind_of_file)
    return {"model": name, "target": made.target, "samples": samples}
