"""The hand-written request sets: every gold answer validates, no duplicates (scripts/check_requests.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_hand_written_request_sets_are_valid() -> None:
    files = list((ROOT / "schemas").glob("*.requests.jsonl")) + list((ROOT / "tests/data/unseen").glob("*.jsonl"))
    assert len(files) >= 5
    done = subprocess.run([sys.executable, str(ROOT / "scripts/check_requests.py")], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
