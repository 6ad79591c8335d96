"""`schemagen check-data`: invalid records and stale datasets/adapters, each named by file and line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schema_specialist.checks.data import check_data_paths
from schema_specialist.cli import main
from schema_specialist.schema import schema_hash
from tests.conftest import ORDER_SCHEMA


@pytest.fixture
def dataset(tmp_path: Path, make_dataset: Callable[..., Path], order_pairs: list[tuple[str, Any]]) -> Path:
    schema_path = tmp_path / "schemas" / "order.json"
    schema_path.parent.mkdir()
    schema_path.write_text(json.dumps(ORDER_SCHEMA, indent=2))
    return make_dataset(ORDER_SCHEMA, order_pairs, name="order-ds", schema_path=schema_path)


def _adapter(tmp_path: Path, dataset: Path, sha: str | None = None) -> Path:
    d = tmp_path / "adapters" / "order"
    d.mkdir(parents=True)
    meta = {"format": "schemagen-adapter/1", "schema": ORDER_SCHEMA, "schema_sha256": sha or schema_hash(ORDER_SCHEMA),
            "dataset": {"path": str(dataset), "manifest": str(dataset / "manifest.json")}}
    (d / "schemagen.json").write_text(json.dumps(meta, indent=2))
    return d


def test_clean_dataset_and_adapter(tmp_path: Path, dataset: Path) -> None:
    adapter = _adapter(tmp_path, dataset)
    reports = check_data_paths([dataset, adapter])
    assert [r.kind for r in reports] == ["dataset", "adapter"]
    assert not any(r.failed(strict=True) for r in reports), [i.render() for r in reports for i in r.issues]
    assert reports[0].info["records"] == 40


def test_invalid_records_name_file_and_line(dataset: Path) -> None:
    train = dataset / "train.jsonl"
    lines = train.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["messages"][-1]["content"] = json.dumps({"id": "A1", "status": "lost", "total": -1})
    lines[1] = json.dumps(rec)
    rec2 = json.loads(lines[2])
    rec2["messages"][-1]["content"] = "{not json"
    lines[2] = json.dumps(rec2)
    lines[3] = '{"messages": [broken'
    train.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["check-data", str(dataset)])
    assert result.exit_code == 1, result.output
    assert f"{train}:2: error: the answer violates the schema" in result.output
    assert f"{train}:3: error: the assistant answer is not JSON" in result.output
    assert f"{train}:4: error: not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_stale_dataset_after_schema_edit(tmp_path: Path, dataset: Path) -> None:
    schema_path = tmp_path / "schemas" / "order.json"
    schema_path.write_text(json.dumps({**ORDER_SCHEMA, "title": "order v2"}))
    [report] = check_data_paths([dataset / "manifest.json"])
    stale = [i for i in report.issues if i.code == "stale-dataset"]
    assert stale and stale[0].path == str(dataset / "manifest.json") and stale[0].line
    assert '"sha256"' in (dataset / "manifest.json").read_text().splitlines()[stale[0].line - 1]


def test_stale_adapter(tmp_path: Path, dataset: Path) -> None:
    adapter = _adapter(tmp_path, dataset)
    (tmp_path / "schemas" / "order.json").write_text(json.dumps({**ORDER_SCHEMA, "required": ["id"]}))
    result = CliRunner().invoke(main, ["check-data", "--format", "json", str(adapter / "schemagen.json")])
    assert result.exit_code == 1
    [report] = json.loads(result.output)["files"]
    codes = [i["code"] for i in report["issues"]]
    assert "stale-adapter" in codes
    issue = next(i for i in report["issues"] if i["code"] == "stale-adapter")
    text_lines = (adapter / "schemagen.json").read_text().splitlines()
    assert issue["path"].endswith("schemagen.json") and '"schema_sha256"' in text_lines[issue["line"] - 1]


def test_adapter_hash_disagrees_with_its_dataset(tmp_path: Path, dataset: Path) -> None:
    adapter = _adapter(tmp_path, dataset, sha="0" * 64)
    [report] = check_data_paths([adapter])
    assert sum(i.code == "stale-adapter" for i in report.issues) >= 2  # vs its stored schema and vs its dataset


def test_jsonl_file_alone_and_with_its_dataset(dataset: Path) -> None:
    assert len(check_data_paths([dataset / "val.jsonl"])) == 1
    reports = check_data_paths([dataset / "train.jsonl", dataset / "manifest.json", dataset])
    assert [r.kind for r in reports] == ["dataset"]


def test_bare_jsonl_needs_schema(tmp_path: Path, dataset: Path) -> None:
    bare = tmp_path / "bare.jsonl"
    bare.write_text((dataset / "train.jsonl").read_text())
    runner = CliRunner()
    assert runner.invoke(main, ["check-data", str(bare)]).exit_code == 2
    ok = runner.invoke(main, ["check-data", "--schema", str(tmp_path / "schemas" / "order.json"), str(bare)])
    assert ok.exit_code == 0, ok.output


def test_bad_inputs_one_line_each(tmp_path: Path, dataset: Path) -> None:
    broken = tmp_path / "broken-ds"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"schema": {"sha256": ')
    huge = tmp_path / "huge-ds"
    huge.mkdir()
    (huge / "manifest.json").write_text(" " * (6 * 1024 * 1024) + "{}")
    args = ["check-data", str(tmp_path / "nothing-here"), str(broken), str(huge), str(dataset)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert sum("nothing-here" in line for line in lines) == 1
    assert sum("broken-ds" in line for line in lines) == 1 and "[json-syntax]" in result.output
    assert sum("huge-ds" in line for line in lines) == 1 and "[too-large]" in result.output
    assert f"{dataset}: ok" in result.output
    assert "Traceback" not in result.output
