"""Intra-op threads that follow the machine's load, so a fit slows to its fair share of a
busy CPU instead of stalling.

torch splits each operation over ``torch.get_num_threads()`` OpenMP threads and waits for
the slowest. When other processes hold the cores, one of those threads is often descheduled
and every operation waits for it: on 2 cores with two busy processes beside it, the demo fit
with 2 threads took 4.2× its quiet time, with 1 thread 1.5× (``docs/benchmarks.md``).

``training.threads: auto`` (the default) measures how many cores the *other* processes used
since the last look (the machine's busy time from ``/proc/stat`` less this process's own CPU
time, over the wall time) and sets ``round(cores - others)`` threads, at least 1 and at most
the threads torch had when the fit started (``OMP_NUM_THREADS`` / ``torch.set_num_threads``
bound it). It looks when training starts (over the time since the fit began: decoding,
preprocessing) and then every ``INTERVAL`` seconds at a batch boundary. The threads torch had
are restored when the fit ends. ``threads: N`` fixes N threads for the fit. Without
``/proc/stat`` (not Linux), ``auto`` keeps torch's threads as they are.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

import lightning as L
import torch

__all__ = ["LoadSampler", "ThreadPolicy"]

log = logging.getLogger("polymodal")

INTERVAL = 2.0  # seconds between looks


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _busy_seconds() -> float | None:
    """CPU-seconds every core of the machine has spent busy since boot, or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system  # every thread of this process


class LoadSampler:
    """How many cores other processes used between two looks."""

    def __init__(self) -> None:
        self.cores = _cores()
        self._last = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float | None, float]:
        return time.perf_counter(), _busy_seconds(), _own_seconds()

    def others(self, min_window: float = 0.2) -> float | None:
        """Cores the other processes kept busy since the last call (None: unknown, or too
        short a window); starts the next window."""
        now = self._snapshot()
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        if busy0 is None or busy1 is None or t1 - t0 < min_window:
            return None
        self._last = now
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))


class ThreadPolicy(L.Callback):
    """Sets torch's intra-op threads for a fit (module docstring).

    Args:
        threads: ``"auto"`` or a fixed number.
        sampler: started when the fit began (its first window covers decoding); None: now.
    """

    def __init__(self, threads: Any = "auto", sampler: LoadSampler | None = None) -> None:
        self.fixed = None if threads in ("auto", 0, None) else int(threads)
        self.sampler = sampler
        self.before = torch.get_num_threads()
        self.current = self.before
        self._next = 0.0
        self.changes: list[tuple[float, int]] = []  # (others, threads) at each change

    def _decide(self) -> None:
        others = self.sampler.others() if self.sampler is not None else None
        self._next = time.perf_counter() + INTERVAL
        if others is None:
            return
        wanted = max(1, min(self.before, round(self.sampler.cores - others)))
        if wanted != self.current:
            torch.set_num_threads(wanted)
            log.debug("other processes use %.1f of %d cores: %d torch threads", others, self.sampler.cores, wanted)
            self.changes.append((round(others, 2), wanted))
            self.current = wanted

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.before = self.current = torch.get_num_threads()
        if self.fixed is not None:
            torch.set_num_threads(self.fixed)
            self.current = self.fixed
            return
        if self.sampler is None:
            self.sampler = LoadSampler()
        self._decide()

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.fixed is None and time.perf_counter() >= self._next:
            self._decide()

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.restore()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.restore()

    def restore(self) -> None:
        if torch.get_num_threads() != self.before:
            torch.set_num_threads(self.before)
        self.current = self.before
