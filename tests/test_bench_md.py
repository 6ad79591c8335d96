"""The benchmark docs' machine line: it names the CPU and whether it computed in bf16."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from _bench_md import cpu_line  # noqa: E402


@pytest.mark.parametrize(("flags", "says"), [
    ("fpu avx2 avx512f avx512_bf16", "AMD EPYC, AVX-512 with BF16 (bfloat16)"),
    ("fpu avx2 amx_bf16 amx_tile", "AMD EPYC, AVX-512 with BF16 (bfloat16)"),
    ("fpu avx2 avx512f", "AMD EPYC, AVX2 only (float32)"),
    ("fpu sse4_2", "AMD EPYC"),
])
def test_the_machine_line_says_which_dtype_the_cpu_computes_in(flags: str, says: str) -> None:
    info = f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n\nprocessor\t: 1\n"
    assert cpu_line(info, "x86_64") == says


def test_no_model_name_falls_back() -> None:
    assert cpu_line("", "aarch64") == "aarch64"
