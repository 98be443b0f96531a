"""Faults the reliability tests inject."""
from __future__ import annotations

import errno
import os
from typing import Any, Callable


def disk_full_on_call(real: Callable[..., Any], call: int) -> Callable[..., Any]:
    """``real`` that raises ENOSPC (disk full) on its ``call``-th call and works on the others."""
    calls = []

    def save(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    return save
