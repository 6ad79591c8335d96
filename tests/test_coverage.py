"""scripts/bench_coverage.py: schema selection, forked runs with a hard timeout, re-checking, the report."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from schema_specialist.prompts import pair_record

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_coverage", ROOT / "scripts" / "bench_coverage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_coverage"] = module
    spec.loader.exec_module(module)
    return module


def test_schema_files_follow_the_manifest_with_subset_and_limit(bench: Any, tmp_path: Path) -> None:
    for sub in ("A", "B"):
        (tmp_path / sub).mkdir()
        for i in range(3):
            (tmp_path / sub / f"s{i}.json").write_text("{}")
    files = bench.schema_files(tmp_path, None, 2)
    assert [(s, p.name) for s, p in files] == [("A", "s0.json"), ("A", "s1.json"), ("B", "s0.json"), ("B", "s1.json")]
    assert {s for s, _ in bench.schema_files(tmp_path, ["B"], None)} == {"B"}
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"files": [{"subset": "B", "file": "B/s2.json"}]}))
    assert [p.name for _, p in bench.schema_files(tmp_path, None, None)] == ["s2.json"]


def _slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def _boom() -> None:
    raise ValueError("broken")


def test_forked_runs_report_results_crashes_and_timeouts(bench: Any) -> None:
    assert bench.run_forked(_slow, (0.0,), 20) == ("ok", "done")
    status, text = bench.run_forked(_boom, (), 20)
    assert status == "crash" and "ValueError: broken" in text
    t0 = time.perf_counter()
    assert bench.run_forked(_slow, (30.0,), 0.5) == ("timeout", None)
    assert time.perf_counter() - t0 < 10


def test_recheck_validates_every_emitted_pair_against_the_original(bench: Any, tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}}))
    out = tmp_path / "out"
    out.mkdir()
    lines = [pair_record("q1", json.dumps({"n": 1})), pair_record("q2", json.dumps({"n": 9}))]
    (out / "train.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    (out / "rejected.jsonl").write_text(json.dumps({"reason": "not JSON: x"}) + "\n")
    assert bench.recheck(schema, out) == (2, 1, ["not JSON: x"])


def _row(subset: str, covered: bool, **kw: Any) -> dict[str, Any]:
    probe = {"strict": {"compiles": True}, "loosened": {"compiles": True}}
    row = {"subset": subset, "file": f"{subset}/x.json", "loaded": True, "covered": covered,
           "emitted": int(covered), "valid": int(covered), "engine": "xgrammar", "dropped": [],
           "compile_seconds": 0.01, "prepare_seconds": 0.02,
           "engines": {"xgrammar": probe, "llguidance": probe, "outlines_core": probe}}
    if not covered:
        row["reason"] = "all candidates invalid"
    return {**row, **kw}


def test_summary_and_markdown_per_subset(bench: Any) -> None:
    rows = [_row("A", True), _row("A", False),
            _row("B", False, loaded=False, reason="metaschema", engines=None, engine=None, compile_seconds=None,
                 error="invalid schema at enum")]
    engines = ["xgrammar", "llguidance", "outlines_core"]
    overall = bench.summarize(rows, engines)
    assert overall["covered"] == 1 and overall["schemas"] == 3 and overall["loaded"] == 2
    assert overall["reasons"] == {"all candidates invalid": 1, "metaschema": 1}
    assert overall["compiled_by"]["xgrammar"] == {"strict": 2, "loosened": 2, "probed": 2}
    args = argparse.Namespace(engines=engines, n=1, max_candidates=8, batch_size=4, max_new_tokens=320,
                              max_tokens_cap=1024, budget=15.0,
                              hard_timeout=45.0, engine="auto", seed=0, probe_timeout=8.0)
    summary = {"overall": overall, "subsets": {s: bench.summarize([r for r in rows if r["subset"] == s], engines)
                                               for s in ("A", "B")}, "rows": rows}
    text = bench.markdown(summary, args, 60.0)
    assert "| A | 2 | 2 |" in text and "| **all** | 3 | 2 |" in text
    assert "1/3 schemas (33.3%)" in text and "`B/x.json`: metaschema" in text
