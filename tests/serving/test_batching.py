"""Dynamic batching: concurrent requests to one model share forward passes, each gets its own
rows' answers, batches stay within their bounds, and a lone request does not wait."""
from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from polymodal.serving import ServeSettings, create_app
from polymodal.serving.batching import Batcher

pytestmark = pytest.mark.usefixtures("one_thread")


def _batcher(calls: list, **options) -> Batcher:
    def run(items):
        calls.append(list(items))
        time.sleep(0.02)  # a forward pass: requests arriving meanwhile form the next batch
        return [ValueError(f"bad {i}") if i == "bad" else f"answer {i}" for i in items]
    return Batcher(run, lambda item: 2 if item == "pair" else 1, ThreadPoolExecutor(1), **options)


async def _ask(batcher: Batcher, item, delay: float = 0.0):
    async with batcher.announce():
        await asyncio.sleep(delay)  # decoding the upload
        return await batcher.submit(item)


def test_concurrent_items_share_passes_within_max_batch():
    calls: list = []
    batcher = _batcher(calls, max_batch=4, wait_s=0.05)

    async def main():
        return await asyncio.gather(*[_ask(batcher, i, delay=0.001 * (i % 3)) for i in range(10)],
                                    return_exceptions=True)
    answers = asyncio.run(main())
    assert answers == [f"answer {i}" for i in range(10)]
    assert len(calls) < 10 and max(len(c) for c in calls) <= 4
    assert sorted(i for c in calls for i in c) == list(range(10))


def test_one_failing_item_fails_only_its_caller_and_large_items_go_alone():
    calls: list = []
    batcher = _batcher(calls, max_batch=2, wait_s=0.05)

    async def main():
        return await asyncio.gather(_ask(batcher, "a"), _ask(batcher, "bad"), _ask(batcher, "pair"),
                                    return_exceptions=True)
    a, bad, pair = asyncio.run(main())
    assert a == "answer a" and pair == "answer pair" and isinstance(bad, ValueError)
    assert ["pair"] in calls


def test_a_lone_request_does_not_wait_and_batching_can_be_off():
    calls: list = []
    batcher = _batcher(calls, max_batch=8, wait_s=5.0)  # a wait that would show
    start = time.perf_counter()
    assert asyncio.run(_ask(batcher, 1)) == "answer 1"
    assert time.perf_counter() - start < 1.0
    off: list = []
    unbatched = _batcher(off, enabled=False)

    async def main():
        return await asyncio.gather(*[_ask(unbatched, i) for i in range(5)])
    assert asyncio.run(main()) == [f"answer {i}" for i in range(5)]
    assert [len(c) for c in off] == [1] * 5


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_predictions_match_one_at_a_time(served, picture, clip, batching):
    app = create_app(ServeSettings(models=[served.classifier], batching=batching, max_batch=8, batch_wait_ms=50))
    rows = [{"caption": ["a zero", "a one", "a two", "a three"][i % 4], "size": float(i % 4)} for i in range(12)]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            async def one(row):
                files = [("image", ("p.png", picture)), ("audio", ("c.wav", clip))]
                response = await client.post("/v1/models/digits/predict", data={"rows": json.dumps([row])}, files=files)
                assert response.status_code == 200, response.text
                return response.json()["predictions"][0]
            together = await asyncio.gather(*[one(r) for r in rows])
            alone = [await one(r) for r in rows]
            return together, alone
    together, alone = asyncio.run(main())
    for a, b in zip(together, alone):
        assert a["label"] == b["label"] and a["absent"] == b["absent"] == []
        assert all(abs(a["probabilities"][c] - b["probabilities"][c]) < 1e-5 for c in a["probabilities"])
    batcher = app.state.registry.models["digits"].batcher
    assert batcher.items == 24
    assert (batcher.batches < 24) if batching else (batcher.batches == 24)
