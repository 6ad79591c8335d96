"""Write one benchmark's section of docs/BENCHMARKS.md between its own markers (others untouched)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nEvery figure here is written by a script under `scripts/`; rerun it to refresh its section.\n"


def project_path(path: str | Path) -> str:
    """`path` as written from the project root, where the documented commands run, when it lies inside
    the project; else as given."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def cpu_line(cpuinfo: str, fallback: str, dtype: str | None) -> str:
    """The CPU's model name from /proc/cpuinfo's text, and the dtype `--dtype auto` computes in on it."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
               fallback)
    return f"{cpu}, {dtype} compute" if dtype else cpu


def auto_dtype() -> str | None:
    """What the teacher and eval compute in here (`models.fast_dtype`), or None outside the project's venv."""
    try:
        from schema_specialist.models import fast_dtype
    except ImportError:
        return None
    return fast_dtype()


def machine() -> str:
    """One line naming the machine: CPU model and compute dtype, cores, memory, Python and torch versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = cpu_line(Path("/proc/cpuinfo").read_text(), cpu, auto_dtype())
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    try:
        import torch

        tv = f", torch {torch.__version__}"
    except ImportError:
        tv = ""
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}{tv}, no GPU"


def update_section(name: str, title: str, command: str, body: str) -> None:
    """Replace (or append) the section `name` with a titled block: command, machine, date, body."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
    rev = ""
    with contextlib.suppress(OSError):
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=DOC.parent.parent, check=False).stdout.strip()
    block = (f"<!-- {name}:start -->\n## {title}\n\n- command: `{command}`\n- machine: {machine()}\n"
             f"- date: {_dt.date.today().isoformat()}{f' (commit {rev})' if rev else ''}\n\n{body.strip()}\n"
             f"<!-- {name}:end -->\n")
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    tmp = DOC.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(DOC)
