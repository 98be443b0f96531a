"""Dynamic batching: concurrent requests to one model gathered into one forward pass.

Each request announces itself when it arrives (before its uploads are decoded) and queues its
rows when they are ready. A batch starts with the first queued request and takes every other
one already queued; while announced requests are still being decoded it waits for them, at
most ``wait_s`` after the first, and never beyond ``max_batch`` rows. A lone client therefore
never waits, and under load the batch grows with the number of clients. The model runs in
one thread of its own, so batches of one model never overlap and the event loop stays free.
"""
from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Generic, Sequence, TypeVar

__all__ = ["Batcher"]

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Job(Generic[Item]):
    item: Item
    size: int
    future: asyncio.Future


class Batcher(Generic[Item, Result]):
    """Runs ``run(items) -> results`` (one result, or an exception, per item) on batches of items.

    Args:
        run: called in ``executor`` with the items of one batch; returns one result per item,
            in order; a result that is an exception is raised to that item's caller only.
        size: the number of rows of an item (a batch holds at most ``max_batch`` rows, or one
            larger item alone).
        executor: where ``run`` runs (one thread per model).
        enabled: False runs every item alone, at once (for comparison).
    """

    def __init__(self, run: Callable[[Sequence[Item]], list[Any]], size: Callable[[Item], int], executor: Executor,
                 max_batch: int = 32, wait_s: float = 0.005, enabled: bool = True):
        self._run, self._size, self._executor = run, size, executor
        self.max_batch, self.wait_s, self.enabled = max_batch, wait_s, enabled
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._announced = 0
        self._busy = False  # a batch is being gathered or run
        self.batches = 0  # forward passes run
        self.items = 0  # items answered

    @contextlib.asynccontextmanager
    async def announce(self) -> AsyncIterator[None]:
        """Wrap the handling of one request: a batch may wait for it while it is being decoded."""
        self._announced += 1
        try:
            yield
        finally:
            self._announced -= 1

    async def submit(self, item: Item) -> Result:
        """The result of ``item``, computed in a batch with other items."""
        loop = asyncio.get_running_loop()
        if not self.enabled:
            self.batches += 1
            self.items += 1
            return _unwrap((await loop.run_in_executor(self._executor, self._run, [item]))[0])
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:  # (a test's new loop)
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._loop())
        job = _Job(item, self._size(item), loop.create_future())
        self._queue.put_nowait(job)
        self._announced -= 1  # queued: no longer awaited by the batch being gathered
        try:
            return _unwrap(await job.future)
        finally:
            self._announced += 1  # balanced by announce()'s exit

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        held: _Job | None = None
        while True:
            first = held or await queue.get()
            held = None
            self._busy = True
            jobs, rows = [first], first.size
            deadline = loop.time() + self.wait_s
            while rows < self.max_batch:
                if queue.empty():
                    left = deadline - loop.time()
                    if self._announced <= 0 or left <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                else:
                    job = queue.get_nowait()
                if rows + job.size > self.max_batch:
                    held = job
                    break
                jobs.append(job)
                rows += job.size
            live = [j for j in jobs if not j.future.done()]  # a caller that went away needs nothing
            if not live:
                self._busy = held is not None
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._run, [j.item for j in live])
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                results = [exc] * len(live)
            self.batches += 1
            self.items += len(live)
            for job, result in zip(live, results):
                if not job.future.done():
                    job.future.set_result(result)
            self._busy = held is not None

    async def close(self) -> None:
        """Stop gathering (after the requests already queued are answered)."""
        if self._task is None:
            return
        while self._busy or (self._queue is not None and not self._queue.empty()):
            await asyncio.sleep(0.001)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None


def _unwrap(result: Any) -> Any:
    if isinstance(result, BaseException):
        raise result
    return result
