"""Counting and reporting the inputs that ``on_bad_input`` skipped.

``load_inputs`` records every unusable cell as ``(row position, input name, reason)``.
These helpers turn that list into the log line, the summary stored in ``metrics.json``
and the per-row reason column of ``polymodal predict``'s output.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Sequence

__all__ = ["POLICIES", "normalise_policy", "skip_summary", "skip_log_line", "reasons_by_row", "warn_unknown_labels"]

# on_bad_input values; "skip" is the older name of "skip_row".
POLICIES = ("error", "skip_row", "skip_modality")

Skipped = Sequence[tuple[int, str, str]]


def normalise_policy(policy: str) -> str:
    """``"skip"`` → ``"skip_row"``; other known policies unchanged."""
    return "skip_row" if policy == "skip" else policy


def skip_summary(skipped: Skipped, n_rows: int, n_kept: int, policy: str, limit: int = 20) -> dict[str, Any]:
    """A JSON-able summary: counts per input and per reason, and the first ``limit`` items.

    Args:
        skipped: ``(row, input, reason)`` per unusable cell.
        n_rows: rows in the table; n_kept: rows that were kept.
    """
    reasons = Counter(reason for _, _, reason in skipped)
    return {
        "policy": normalise_policy(policy),
        "rows": int(n_rows),
        "rows_dropped": int(n_rows - n_kept),
        "inputs_skipped": len(skipped),
        "by_input": dict(sorted(Counter(name for _, name, _ in skipped).items())),
        "by_reason": dict(reasons.most_common(limit)),
        "first": [{"row": int(i), "input": name, "reason": reason}
                  for i, name, reason in sorted(skipped)[:limit]],
    }


def skip_log_line(what: str, skipped: Skipped, n_rows: int, n_kept: int, policy: str) -> str:
    """One line for the log, e.g. ``train.csv: skipped 2 of 60 rows (on_bad_input: skip_row);
    unreadable: photo (2); first: row 5 photo: zero-byte file; ...``."""
    policy = normalise_policy(policy)
    per_input = ", ".join(f"{n} ({c})" for n, c in sorted(Counter(n for _, n, _ in skipped).items()))
    first = "; ".join(f"row {i} {n}: {r}" for i, n, r in sorted(skipped)[:3])
    if policy == "skip_modality":
        head = f"marked {len(skipped)} unreadable input(s) absent in {n_rows} rows"
    else:
        head = f"skipped {n_rows - n_kept} of {n_rows} rows"
    return f"{what}: {head} (on_bad_input: {policy}); unreadable: {per_input}; first: {first}"


def reasons_by_row(skipped: Skipped, n_rows: int) -> list[str]:
    """Per table row, ``"input: reason; ..."`` for its skipped inputs, or ``""``."""
    out: list[list[str]] = [[] for _ in range(n_rows)]
    for i, name, reason in sorted(skipped):
        if 0 <= i < n_rows:
            out[i].append(f"{name}: {reason}")
    return ["; ".join(parts) for parts in out]


def warn_unknown_labels(loaded: Any, table: Any, what: str, log: logging.Logger | None = None) -> None:
    """Log how many rows ``load_inputs(unknown="drop")`` left out of ``what``, if any.

    Args:
        loaded: the ``LoadedInputs`` (its ``unknown_label`` count); table: the ``Table`` read.
    """
    if loaded.unknown_label:
        (log or logging.getLogger("polymodal")).warning(
            "%s: %d of %d rows left out of %s: their label is missing or one the model was not trained on",
            table.source, loaded.unknown_label, len(table.frame), what)
