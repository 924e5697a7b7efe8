"""A dataset viewer (datasets-server) emulator on 127.0.0.1.

Serves ``/is-valid``, ``/splits``, ``/parquet``, ``/info``, ``/first-rows`` and ``/size`` in
the live API's shapes::

    /is-valid   {"viewer", "preview", "search", "filter", "statistics"}
    /splits     {"splits": [{"dataset", "config", "split"}], "pending": [], "failed": []}
    /parquet    {"parquet_files": [{"dataset", "config", "split", "url", "filename", "size"}],
                 "pending": [], "failed": [], "partial": false}
    /info       {"dataset_info": {...} (one config) or {config: {...}}, "partial": false}
    /first-rows {"dataset", "config", "split", "features": [{"feature_idx", "name", "type"}],
                 "rows": [{"row_idx", "row", "truncated_cells"}], "truncated": false}
    /size       {"size": {"dataset": {...}, "configs": [...], "splits": [...]}, "pending", "failed", "partial"}

Errors follow the live service: ``{"error": ...}`` with an ``X-Error-Code`` header. A gated,
private or missing dataset is 401 ``ExternalUnauthenticatedError`` without a token and 404
``ExternalAuthenticatedError`` with a token that may not see it; a missing parameter is 422
``MissingRequiredParameter``; an unknown config or split is 404 ``ResponseNotFound``.

Built in: ``HuggingFaceH4/chat-demo`` (a chat ``messages`` column, configs ``default``),
``stanfordnlp/imdb-demo`` (``plain_text``: train/test, text + ClassLabel) and the gated
``meta-demo/gated-set``, readable with the token in ``accepted_tokens`` (``hf_test``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes._routed import Call, Fail, RoutedEmulator

_STRING = {"dtype": "string", "_type": "Value"}
_MISSING = ("The dataset does not exist, or is not accessible without authentication (private or gated). "
            "Please check the spelling of the dataset name or retry with authentication.")
_NO_ACCESS = ("The dataset does not exist, or is not accessible with the current credentials (private or gated). "
              "Please check the spelling of the dataset name or retry with other authentication credentials.")


@dataclass
class FakeDataset:
    dataset: str
    #: config -> split -> rows
    configs: dict[str, dict[str, list[dict[str, Any]]]]
    features: dict[str, Any]  # name -> feature type
    gated: bool = False
    description: str = ""
    license: str = ""
    valid: dict[str, bool] = field(default_factory=lambda: dict(viewer=True, preview=True, search=True,
                                                                filter=True, statistics=True))


def _chat_rows(n: int) -> list[dict[str, Any]]:
    return [{
        "prompt": f"Question {i}: how do I fine-tune a model?",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant.\nBe concise."},
            {"role": "user", "content": f"Question {i}: how do I fine-tune a model?"},
            {"role": "assistant", "content": "Use TRL's SFTTrainer. " + "Details follow. " * 40},
        ],
        "score": 0.5 + i / 100,
    } for i in range(n)]


def _imdb_rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    return [{"text": f"Review {offset + i}: " + "A fine film with a long plot summary. " * 10, "label": i % 2}
            for i in range(n)]


def default_datasets() -> dict[str, FakeDataset]:
    chat_features = {
        "prompt": _STRING,
        "messages": {"feature": {"content": _STRING, "role": _STRING}, "_type": "List"},
        "score": {"dtype": "float64", "_type": "Value"},
    }
    return {d.dataset: d for d in (
        FakeDataset("HuggingFaceH4/chat-demo", {"default": {"train_sft": _chat_rows(120), "test_sft": _chat_rows(20)}},
                    chat_features, description="Chat conversations for SFT.", license="mit"),
        FakeDataset("stanfordnlp/imdb-demo", {"plain_text": {"train": _imdb_rows(250), "test": _imdb_rows(250, 250)},
                                              "unsupervised": {"unsupervised": _imdb_rows(50)}},
                    {"text": _STRING, "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}},
                    description="Large Movie Review Dataset."),
        FakeDataset("meta-demo/gated-set", {"default": {"train": _imdb_rows(5)}},
                    {"text": _STRING, "label": {"dtype": "int64", "_type": "Value"}}, gated=True),
    )}


class DatasetsServerEmulator(RoutedEmulator):
    _thread_name = "datasets-server-fake"
    ROUTES = [
        ("GET", r"/is-valid", "_is_valid"),
        ("GET", r"/splits", "_splits"),
        ("GET", r"/parquet", "_parquet"),
        ("GET", r"/info", "_info"),
        ("GET", r"/first-rows", "_first_rows"),
        ("GET", r"/size", "_size"),
    ]

    def __init__(self, datasets: dict[str, FakeDataset] | None = None, accepted_tokens: tuple[str, ...] = ("hf_test",),
                 hub: str = "https://huggingface.co") -> None:
        super().__init__()
        self.datasets = datasets if datasets is not None else default_datasets()
        self.accepted_tokens = set(accepted_tokens)
        self.hub = hub

    def add(self, dataset: FakeDataset) -> None:
        with self._lock:
            self.datasets[dataset.dataset] = dataset

    # ------------------------------------------------------------------ helpers

    def _dataset(self, call: Call) -> FakeDataset:
        name = call.arg("dataset")
        if not name:
            raise Fail(422, "Parameter 'dataset' is required", {"X-Error-Code": "MissingRequiredParameter"})
        found = self.datasets.get(name)
        visible = found is not None and (not found.gated or call.token in self.accepted_tokens)
        if not visible:
            if call.token is None:
                raise Fail(401, _MISSING, {"X-Error-Code": "ExternalUnauthenticatedError"})
            raise Fail(404, _NO_ACCESS, {"X-Error-Code": "ExternalAuthenticatedError"})
        return found  # type: ignore[return-value]

    def _config(self, call: Call, ds: FakeDataset, need_split: bool = False) -> tuple[str, str | None]:
        config = call.arg("config")
        if not config:
            raise Fail(422, "Parameter 'config' is required", {"X-Error-Code": "MissingRequiredParameter"})
        if config not in ds.configs:
            raise Fail(404, "Not found.", {"X-Error-Code": "ResponseNotFound"})
        split = call.arg("split")
        if need_split:
            if not split:
                raise Fail(422, "Parameter 'split' is required", {"X-Error-Code": "MissingRequiredParameter"})
            if split not in ds.configs[config]:
                raise Fail(404, "Not found.", {"X-Error-Code": "ResponseNotFound"})
        return config, split

    def _pairs(self, ds: FakeDataset) -> list[tuple[str, str]]:
        return [(c, s) for c, splits in ds.configs.items() for s in splits]

    @staticmethod
    def _bytes(rows: list[dict[str, Any]]) -> int:
        return sum(len(str(r)) for r in rows)

    def _config_info(self, ds: FakeDataset, config: str) -> dict[str, Any]:
        splits = {s: {"name": s, "num_bytes": self._bytes(rows), "num_examples": len(rows),
                      "dataset_name": ds.dataset.split("/")[1]} for s, rows in ds.configs[config].items()}
        total = sum(s["num_bytes"] for s in splits.values())
        return {"description": ds.description, "citation": "", "homepage": "", "license": ds.license,
                "features": ds.features, "builder_name": "parquet", "dataset_name": ds.dataset.split("/")[1],
                "config_name": config, "version": {"version_str": "0.0.0", "major": 0, "minor": 0, "patch": 0},
                "splits": splits, "download_size": total // 3, "dataset_size": total}

    # ------------------------------------------------------------------ routes

    def _is_valid(self, call: Call) -> dict[str, Any]:
        return dict(self._dataset(call).valid)

    def _splits(self, call: Call) -> dict[str, Any]:
        ds = self._dataset(call)
        config = call.arg("config")
        return {"splits": [{"dataset": ds.dataset, "config": c, "split": s} for c, s in self._pairs(ds)
                           if config in (None, c)], "pending": [], "failed": []}

    def _parquet(self, call: Call) -> dict[str, Any]:
        ds = self._dataset(call)
        files = []
        for c, s in self._pairs(ds):
            n_files = 2 if len(ds.configs[c][s]) > 200 else 1
            for i in range(n_files):
                name = f"{i:04d}.parquet"
                files.append({"dataset": ds.dataset, "config": c, "split": s,
                              "url": f"{self.hub}/datasets/{ds.dataset}/resolve/refs%2Fconvert%2Fparquet/{c}/{s}/{name}",
                              "filename": name, "size": self._bytes(ds.configs[c][s]) // 3 // n_files})
        return {"parquet_files": files, "pending": [], "failed": [], "partial": False}

    def _info(self, call: Call) -> dict[str, Any]:
        ds = self._dataset(call)
        if call.arg("config"):
            config, _ = self._config(call, ds)
            return {"dataset_info": self._config_info(ds, config), "partial": False}
        return {"dataset_info": {c: self._config_info(ds, c) for c in ds.configs}, "pending": [], "failed": [],
                "partial": False}

    def _first_rows(self, call: Call) -> dict[str, Any]:
        ds = self._dataset(call)
        config, split = self._config(call, ds, need_split=True)
        rows = ds.configs[config][split][:100]
        features = [{"feature_idx": i, "name": n, "type": t} for i, (n, t) in enumerate(ds.features.items())]
        return {"dataset": ds.dataset, "config": config, "split": split, "features": features,
                "rows": [{"row_idx": i, "row": r, "truncated_cells": []} for i, r in enumerate(rows)],
                "truncated": len(ds.configs[config][split]) > 100}

    def _size(self, call: Call) -> dict[str, Any]:
        ds = self._dataset(call)
        ncols = len(ds.features)
        splits = [{"dataset": ds.dataset, "config": c, "split": s,
                   "num_bytes_parquet_files": self._bytes(ds.configs[c][s]) // 3,
                   "num_bytes_memory": self._bytes(ds.configs[c][s]),
                   "num_rows": len(ds.configs[c][s]), "num_columns": ncols} for c, s in self._pairs(ds)]
        configs = []
        for c in ds.configs:
            mine = [s for s in splits if s["config"] == c]
            configs.append({"dataset": ds.dataset, "config": c,
                            "num_bytes_original_files": sum(s["num_bytes_memory"] for s in mine) // 2,
                            "num_bytes_parquet_files": sum(s["num_bytes_parquet_files"] for s in mine),
                            "num_bytes_memory": sum(s["num_bytes_memory"] for s in mine),
                            "num_rows": sum(s["num_rows"] for s in mine), "num_columns": ncols})
        total = {"dataset": ds.dataset,
                 "num_bytes_original_files": sum(c["num_bytes_original_files"] for c in configs),
                 "num_bytes_parquet_files": sum(c["num_bytes_parquet_files"] for c in configs),
                 "num_bytes_memory": sum(c["num_bytes_memory"] for c in configs),
                 "num_rows": sum(c["num_rows"] for c in configs)}
        return {"size": {"dataset": total, "configs": configs, "splits": splits}, "pending": [], "failed": [],
                "partial": False}
