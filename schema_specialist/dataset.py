"""JSONL records, manifest, atomic writes, crash-safe appends, resume, splits."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import SchemagenError

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
REJECTED = "rejected.jsonl"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def split_for(index: int) -> str:
    """Deterministic 80/10/10 split by acceptance order: exact proportions at any size."""
    r = index % 10
    return "val" if r == 8 else "test" if r == 9 else "train"


def heal_jsonl(path: Path) -> int:
    """Drop a partial last line left by a crash (kill -9 mid-write); returns bytes dropped."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with path.open("r+b") as f:
        f.truncate(keep)
    return len(data) - keep


# Characters that some line readers (Python's str.splitlines among them) take for line breaks: inside
# JSON they can only occur in strings, where the \\u escape means the same.
_LINE_BREAKS = {c: f"\\u{ord(c):04x}" for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
_LINE_BREAK_TABLE = str.maketrans(_LINE_BREAKS)


def jsonl_line(record: Any) -> str:
    """One JSONL line: compact UTF-8 JSON with no character any reader could split the line on."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).translate(_LINE_BREAK_TABLE) + "\n"


class JsonlAppender:
    """Append one record a line, flushed and fsynced each time, so a kill loses at most the line in flight."""

    def __init__(self, path: Path) -> None:
        heal_jsonl(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = path.open("a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        self._f.write(jsonl_line(record))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def read_jsonl(path: str | Path, *, strict: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each line; a malformed line is a one-line error naming file and line."""
    path = Path(path)
    if not path.exists():
        raise SchemagenError("no such file", path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if not strict and not line.endswith("\n"):
                    return  # a partial last line from an interrupted run
                raise SchemagenError(f"line {lineno}: not valid JSON ({exc.msg})", path) from None
            if not isinstance(record, dict):
                raise SchemagenError(f"line {lineno}: a record must be a JSON object", path)
            yield lineno, record


def pair_of(record: dict[str, Any], path: Path | None = None, lineno: int = 0) -> tuple[list[dict[str, str]], str]:
    """(prompt messages, assistant answer) of a `messages` record; malformed -> one-line error."""
    msgs = record.get("messages")
    if not isinstance(msgs, list) or len(msgs) < 2 or not all(isinstance(m, dict) for m in msgs):
        raise SchemagenError(f"line {lineno}: no `messages` list of chat turns", path)
    last = msgs[-1]
    if last.get("role") != "assistant" or not isinstance(last.get("content"), str):
        raise SchemagenError(f"line {lineno}: the last message must be the assistant's answer", path)
    return [{"role": str(m.get("role")), "content": str(m.get("content"))} for m in msgs[:-1]], last["content"]


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """A generated dataset's manifest.json (one-line error when missing or broken)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise SchemagenError("not a generated dataset (no manifest.json)", Path(directory))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemagenError(f"unreadable manifest: {exc}", path) from None
    if not isinstance(data, dict):
        raise SchemagenError("manifest must be a JSON object", path)
    return data


def load_split(directory: str | Path, split: str) -> list[tuple[list[dict[str, str]], str]]:
    """All (prompt messages, answer) pairs of one split of a generated dataset."""
    path = Path(directory) / f"{split}.jsonl"
    return [pair_of(rec, path, n) for n, rec in read_jsonl(path)]
