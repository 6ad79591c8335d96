"""Shared fixtures: the tiny random Mistral, the embedded model, and a hand-made dataset writer."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schema_specialist.dataset import atomic_write_json, split_for
from schema_specialist.prompts import pair_record
from schema_specialist.schema import schema_hash

ROOT = Path(__file__).resolve().parent.parent

ORDER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "order",
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 12},
        "status": {"enum": ["new", "paid", "shipped"]},
        "total": {"type": "number", "minimum": 0, "maximum": 10000},
    },
    "required": ["id", "status", "total"],
    "additionalProperties": False,
}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    from schema_specialist.models import embedded_dir

    return embedded_dir()


@pytest.fixture(scope="session")
def tiny_mistral_dir(tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path) -> Path:
    from schema_specialist.models import build_tiny_mistral

    return build_tiny_mistral(tmp_path_factory.mktemp("tiny-mistral"))


def write_dataset(directory: Path, schema: dict[str, Any], pairs: list[tuple[str, Any]],
                  schema_path: Path | None = None) -> Path:
    """Write a dataset in `schemagen generate`'s format from (question, answer object) pairs."""
    directory.mkdir(parents=True, exist_ok=True)
    if schema_path is None:
        schema_path = directory / "source_schema.json"
        schema_path.write_text(json.dumps(schema), encoding="utf-8")
    files = {s: (directory / f"{s}.jsonl").open("w", encoding="utf-8") for s in ("train", "val", "test")}
    counts = dict.fromkeys(files, 0)
    for i, (question, answer) in enumerate(pairs):
        split = split_for(i)
        answer_text = json.dumps(answer, separators=(",", ":"), ensure_ascii=False)
        record = pair_record(question, answer_text, {"id": f"c{i:06d}", "candidate": i, "split": split})
        files[split].write(json.dumps(record) + "\n")
        counts[split] += 1
    for f in files.values():
        f.close()
    (directory / "rejected.jsonl").write_text("", encoding="utf-8")
    (directory / "schema.json").write_text(json.dumps(schema, indent=2), encoding="utf-8")
    atomic_write_json(directory / "manifest.json", {
        "format": "schemagen-dataset/1",
        "schema": {"name": schema_path.stem, "path": str(schema_path),
                   "path_from_dataset": os.path.relpath(schema_path.resolve(), directory.resolve()),
                   "sha256": schema_hash(schema), "title": schema.get("title", "")},
        "counts": {**counts, "accepted": sum(counts.values()), "rejected": 0},
    })
    return directory


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """make_dataset(schema, pairs, name=...) -> a dataset directory in generate's format."""

    def make(schema: dict[str, Any], pairs: list[tuple[str, Any]], name: str = "ds",
             schema_path: Path | None = None) -> Path:
        return write_dataset(tmp_path / name, schema, pairs, schema_path)

    return make


@pytest.fixture
def order_pairs() -> list[tuple[str, Any]]:
    """40 faithful order pairs."""
    statuses = ["new", "paid", "shipped"]
    return [(f"Record order: id is A{i:03d}; status is {statuses[i % 3]}; total is {i * 2.5}.",
             {"id": f"A{i:03d}", "status": statuses[i % 3], "total": i * 2.5}) for i in range(40)]
