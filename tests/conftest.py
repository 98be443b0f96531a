"""Shared fixtures: real data location, one torch thread, and a small synthetic multimodal table."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from synthetic import make_table


def pytest_configure(config: pytest.Config) -> None:
    # Tests change directory; a relative POLYMODAL_DATA (as in the README) must still resolve.
    root = os.environ.get("POLYMODAL_DATA")
    if root:
        os.environ["POLYMODAL_DATA"] = os.path.abspath(root)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real benchmark data (``$POLYMODAL_DATA``); tests that need it skip without it."""
    root = os.environ.get("POLYMODAL_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("POLYMODAL_DATA is not set to the benchmark data folder")
    return Path(root)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module, restored after it: per-item ops are tiny and a busy box is slow.

    Use it as ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def table(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    frame = make_table(tmp_path)
    frame.to_csv(tmp_path / "train.csv", index=False)
    return tmp_path, frame
