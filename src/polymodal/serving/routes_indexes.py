"""``/v1/indexes``: list, search (a text, an image or a clip), recommend (liked and seen ids) and
the indexed items themselves (a text, or the image or clip, by id) for the web page."""
from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

import polymodal.serving.answers as answers
from polymodal.serving.problems import Problem
from polymodal.serving.registry import Registry, ServedIndex
from polymodal.serving.rows import integer, read_body, text_field
from polymodal.serving.schemas import RecommendRequest, query_body
from polymodal.serving.settings import ServeSettings
from polymodal.serving.uploads import check_file, file_roles, from_base64

__all__ = ["router"]

router = APIRouter(prefix="/v1/indexes", tags=["indexes"])

_QUERIES = ("text", "image", "audio")


def _state(request: Request) -> tuple[Registry, ServeSettings]:
    return request.app.state.registry, request.app.state.settings


async def _in_index_thread(served: ServedIndex, fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(served.executor, functools.partial(fn, *args, **kwargs))


@router.get("", summary="The indexes served: column, modality, size, the query modalities they take")
async def list_indexes(request: Request) -> dict[str, Any]:
    registry, _ = _state(request)
    return {"indexes": [answers.finite(i.describe()) for i in registry.indexes.values()]}


@router.post("/{name}/search", summary="The k items nearest to a text, an image or an audio query",
             openapi_extra=query_body())
async def search(name: str, request: Request) -> dict[str, Any]:
    registry, settings = _state(request)
    served = registry.index(name)
    body = await read_body(request, settings.limits, json_fields=())
    limits = settings.limits
    given = [q for q in _QUERIES if body.fields.get(q) is not None or q in body.files]
    unknown = sorted(set(body.fields) - {*_QUERIES, "k", "column"}) + sorted(set(body.files) - set(file_roles()))
    if unknown or len(given) != 1:
        raise Problem(422, "send exactly one query: text, image or audio (and k, column)" +
                      (f"; unknown field(s): {', '.join(unknown)}" if unknown else f"; got {', '.join(given) or 'none'}"))
    modality = given[0]
    k = integer(body.fields, "k", 10, 1, 1000)
    column = text_field(body.fields, "column")
    if modality not in file_roles():
        value: Any = text_field(body.fields, modality, required=True)
    elif modality in body.files:
        if len(body.files[modality]) != 1 or modality in body.fields:
            raise Problem(422, f"send one {modality} query file")
        value = await run_in_threadpool(check_file, body.files[modality][0], modality, modality, limits)
    else:
        blob = from_base64(body.fields[modality], modality, limits)
        value = await run_in_threadpool(check_file, blob, modality, modality, limits)
    found = await _in_index_thread(served, served.searcher.search, k=k, column=column, **{modality: value})
    return {"index": name, "query": modality, "results": answers.results(found)}


@router.post("/{name}/recommend", summary="Items like the liked ones, leaving out liked and seen ids")
async def recommend(name: str, request: Request, body: RecommendRequest) -> dict[str, Any]:
    from polymodal.retrieval import recommend as recommend_items

    registry, _ = _state(request)
    served = registry.index(name)
    found = await _in_index_thread(served, recommend_items, served.searcher.index, body.liked, body.seen, k=body.k)
    return {"index": name, "results": answers.results(found)}


@router.get("/{name}/items/{item_id}", summary="One indexed item: its text, or its image or clip",
            responses={200: {"content": {"application/json": {}, "image/png": {}, "audio/wav": {}}}})
async def item(name: str, item_id: str, request: Request) -> Any:
    registry, _ = _state(request)
    served = registry.index(name)
    kind, value = await run_in_threadpool(served.items.get, item_id)
    if isinstance(value, str):  # a text item; files come as bytes with their content type
        return {"id": item_id, "text": value}
    return Response(value, media_type=kind, headers={"X-Content-Type-Options": "nosniff",
                                                     "Cache-Control": "private, max-age=300"})
