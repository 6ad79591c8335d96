"""The benchmark docs' machine line: it names the CPU and the dtype the product computes in there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import _bench_md  # noqa: E402


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_the_machine_line_says_the_dtype_the_product_picks(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from schema_specialist import models

    monkeypatch.setattr(models, "fast_dtype", lambda: dtype)  # the one decision teacher and eval use
    info = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n\nprocessor\t: 1\n"
    assert _bench_md.cpu_line(info, "x86_64", _bench_md.auto_dtype()) == f"AMD EPYC, {dtype} compute"


def test_no_model_name_falls_back() -> None:
    assert _bench_md.cpu_line("", "aarch64", None) == "aarch64"


def test_project_path_is_written_from_the_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands in the docs run from the project root: a path inside it is written from there (however it
    was given), one outside it as given."""
    root = _bench_md.ROOT
    assert _bench_md.project_path(root / "schemas" / "order.json") == "schemas/order.json"
    monkeypatch.chdir(root / "scripts")
    assert _bench_md.project_path("../adapters/agent_status") == "adapters/agent_status"
    assert _bench_md.project_path(tmp_path / "x") == str(tmp_path / "x")
