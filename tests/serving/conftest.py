"""Models trained once per test session on real files (FSDD clips, handwritten digits), and a
client of the service over them."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("faiss")

from served_models import ALIGNED, CLASSIFIER, GENERATOR, av_table, build_index, train  # noqa: E402


@pytest.fixture(scope="session")
def served(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``root`` (the table ``train.csv`` and its PNGs), a classifier (text + image + audio + number),
    an alignment model of the three, an index of its image column, and a tiny image VAE."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serving")
    frame = av_table(data_dir, root / "data")
    table = root / "data" / "train.csv"
    models = root / "models"
    out = SimpleNamespace(root=root, data=root / "data", frame=frame, table=table,
                          classifier=train(CLASSIFIER, table, models / "digits"),
                          aligned=train(ALIGNED, table, models / "aligned"),
                          generator=train(GENERATOR, table, models / "sketches"))
    out.index = build_index(out.aligned, table, root / "indexes" / "pictures")
    torch.set_num_threads(before)
    return out


@pytest.fixture(scope="session")
def app(served: SimpleNamespace):
    from polymodal.serving import ServeSettings, create_app

    return create_app(ServeSettings(models=[served.classifier, served.aligned, served.generator],
                                    indexes=[served.index]))


@pytest.fixture()
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="session")
def clip(data_dir: Path) -> bytes:
    return (data_dir / "fsdd" / "3_jackson_7.wav").read_bytes()


@pytest.fixture(scope="session")
def picture(served: SimpleNamespace) -> bytes:
    return (served.data / "d3.png").read_bytes()
