"""The models and indexes a service holds, loaded once at start, and whether their folders changed.

Each model is loaded from its directory (``modeldir.load_model``: JSON, YAML, safetensors) with
a data root that is an empty folder of the service's own, so no table cell can lead to a file
on the server's disk. A model directory whose files change while the service runs is not
reloaded: the model is reported ``stale`` in ``/health`` and its endpoints answer 409 until
the service is restarted.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError
from polymodal.export.runtime import use_runtime
from polymodal.fitted import FittedModel
from polymodal.modeldir import MANIFEST, load_model
from polymodal.serving.items import Items
from polymodal.serving.problems import Problem
from polymodal.serving.settings import ServeSettings

__all__ = ["Registry", "ServedModel", "ServedIndex", "Watch", "check_loadable"]


class Watch:
    """Notices when the files of a folder change (their sizes and times, and the manifest's bytes),
    looking at most once every ``every_s`` seconds. Once changed, it stays changed."""

    def __init__(self, folders: list[Path], every_s: float):
        self.folders, self.every_s = folders, every_s
        self._seen = self._signature()
        self._checked = time.monotonic()
        self.changed = False

    def _signature(self) -> tuple:
        parts: list[Any] = []
        for folder in self.folders:
            manifest = folder / MANIFEST
            parts.append(hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None)
            for file in sorted(folder.rglob("*")):
                try:
                    stat = file.stat()
                except OSError:
                    parts.append((str(file), None))
                    continue
                parts.append((str(file), stat.st_size, stat.st_mtime_ns))
        return tuple(parts)

    def stale(self) -> bool:
        if not self.changed and time.monotonic() - self._checked >= self.every_s:
            self._checked = time.monotonic()
            try:
                self.changed = self._signature() != self._seen
            except OSError:
                self.changed = True
        return self.changed


@dataclasses.dataclass
class ServedModel:
    """One model directory being served.

    Attributes:
        columns: column → role (text, image, audio, numeric, categorical) of its inputs.
        executor: the one thread its model runs in (batches, explain, embed, generate).
    """

    name: str
    path: Path
    fitted: FittedModel
    manifest: dict[str, Any]
    sha256: str
    columns: dict[str, str]
    executor: ThreadPoolExecutor
    watch: Watch
    batcher: Any = None  # the predict Batcher, set by the app

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models`` says of it."""
        fitted = self.fitted
        inputs = [{"name": name, "modality": pre.modality,
                   "columns": [{"name": c, "role": self.columns[c]} for c in pre.columns]}
                  for name, pre in sorted(fitted.preprocessors.items())]
        targets = fitted.labels.get("targets")
        return {"name": self.name, "problem_type": fitted.schema.problem_type, "label": fitted.schema.label,
                "inputs": inputs, "classes": fitted.classes, "metrics": fitted.metrics,
                "generates": list(targets) if targets is not None else None,
                "conditions": list(fitted.labels.get("conditions", [])) if targets is not None else None,
                "version": self.manifest.get("polymodal"), "manifest_sha256": self.sha256,
                "stale": self.watch.stale()}


@dataclasses.dataclass
class ServedIndex:
    """One vector index being served, with the model that embeds its queries."""

    name: str
    path: Path
    searcher: Any  # retrieval.Searcher
    executor: ThreadPoolExecutor
    watch: Watch
    items: Items
    model: str | None  # the served model it was built with, if that one is served too

    def describe(self) -> dict[str, Any]:
        meta = self.searcher.index.meta
        return {"name": self.name, "column": meta.get("column"), "modality": meta.get("modality"),
                "count": len(self.searcher.index), "dim": self.searcher.index.dim, "kind": meta.get("kind"),
                "space": meta.get("space"), "queries": self.searcher.query_columns(), "model": self.model,
                "model_sha256": meta.get("model", {}).get("manifest_sha256"), "items": self.items.available,
                "stale": self.watch.stale()}


class Registry:
    """Every model and index of a service, by name (the folder's name).

    Raises:
        ConfigError: two folders with the same name; ModelDirError: a folder that does not load.
    """

    def __init__(self, settings: ServeSettings):
        from polymodal.retrieval import Searcher

        self.root = Path(tempfile.mkdtemp(prefix="polymodal-serve-"))  # the empty data root
        self._remove_root = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)
        self.models: dict[str, ServedModel] = {}
        self.indexes: dict[str, ServedIndex] = {}
        every = settings.stale_check_s
        try:
            for path in settings.models:
                path = Path(path).expanduser().resolve()
                name = self._name(path, self.models, "model")
                fitted = use_runtime(load_model(path, data_root=self.root), path, settings.runtime)
                manifest_bytes = (path / MANIFEST).read_bytes()
                roles = fitted.schema.roles
                columns = {c: roles.get(c, pre.modality) for pre in fitted.preprocessors.values() for c in pre.columns}
                self.models[name] = ServedModel(
                    name, path, fitted, json.loads(manifest_bytes), hashlib.sha256(manifest_bytes).hexdigest(),
                    columns, ThreadPoolExecutor(1, thread_name_prefix=f"polymodal-{name}"), Watch([path], every))
            for path in settings.indexes:
                path = Path(path).expanduser().resolve()
                name = self._name(path, self.indexes, "index")
                searcher = Searcher.open(path)
                searcher = Searcher(searcher.index, dataclasses.replace(searcher.fitted, data_root=self.root))
                model_dir = Path(searcher.index.meta["model"]["path"]).resolve()
                served = next((m.name for m in self.models.values() if m.path == model_dir), None)
                self.indexes[name] = ServedIndex(
                    name, path, searcher, ThreadPoolExecutor(1, thread_name_prefix=f"polymodal-index-{name}"),
                    Watch([path, model_dir], every), Items.of(searcher.index, settings.limits.file_bytes), served)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _name(path: Path, taken: dict, what: str) -> str:
        if path.name in taken:
            raise ConfigError(f"two {what} folders are named {path.name!r} ({taken[path.name].path} and {path}); "
                              "each is served under its folder's name: rename one")
        return path.name

    def model(self, name: str) -> ServedModel:
        """The model ``name``; 404 when there is none, 409 when its directory changed."""
        return _lookup(self.models, name, "model", f"model {name!r} changed on disk after the service loaded it "
                       "({path}); it is not reloaded silently: restart the service to serve the new version")

    def index(self, name: str) -> ServedIndex:
        """The index ``name``; 404 when there is none, 409 when it or its model changed."""
        return _lookup(self.indexes, name, "index", f"index {name!r} or the model it was built with changed on "
                       "disk after the service loaded them; restart the service to serve the new version")

    def health(self) -> dict[str, Any]:
        stale = sorted([f"model {n}" for n, m in self.models.items() if m.watch.stale()] +
                       [f"index {n}" for n, i in self.indexes.items() if i.watch.stale()])
        return {"status": "stale" if stale else "ok", "stale": stale,
                "models": {n: "stale" if m.watch.stale() else "ok" for n, m in self.models.items()},
                "indexes": {n: "stale" if i.watch.stale() else "ok" for n, i in self.indexes.items()}}

    def drain(self) -> None:
        """Wait until no model or index is running anything."""
        for served in [*self.models.values(), *self.indexes.values()]:
            served.executor.submit(lambda: None).result()

    def close(self) -> None:
        """Let go of the threads and the data root (the registry serves nothing after this)."""
        for served in [*self.models.values(), *self.indexes.values()]:
            served.executor.shutdown(wait=True)
        self._remove_root()


def check_loadable(settings: ServeSettings) -> None:
    """Load every folder once and let go (a parent of several workers checks before it forks)."""
    Registry(settings).close()


def _lookup(served: dict[str, Any], name: str, what: str, changed: str) -> Any:
    """``served[name]``; a 404 that lists what is served, or a 409 (``changed``, with ``{path}``) when stale."""
    found = served.get(name)
    if found is None:
        raise Problem(404, f"no {what} named {name!r}; this service serves: {', '.join(served) or 'none'}")
    if found.watch.stale():
        raise Problem(409, changed.replace("{path}", str(found.path)))
    return found
