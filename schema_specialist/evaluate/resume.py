"""The answer log that makes an eval resumable: `answers.jsonl` in the report directory.

Line 1 is a header with the settings that decide an answer (adapter weights, base model, prompt, decoding);
every further line is one answer, keyed by system and input id (`Item.key`, a hash of the question),
appended and fsynced as its batch finishes. A rerun with the same settings answers only what is missing:
after a `kill -9` nothing written is lost (a torn last line is dropped) and nothing is counted twice
(figures come from the inputs, each looked up once; a repeated key keeps its first answer). Settings
that differ make the log start again, and say so. Batch size and threads are not settings: they change
the speed, not the answers.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any

from ..dataset import JsonlAppender, atomic_write_text, heal_jsonl, jsonl_line
from ..errors import SchemagenError
from .inputs import Generation, Item

NAME = "answers.jsonl"
FORMAT = "schemagen-eval-answers/1"


def _norm(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    parts = [f"{k} {str(old.get(k))[:24]} -> {str(new.get(k))[:24]}" for k in keys[:3]]
    return ", ".join(parts) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


class AnswerLog:
    """Answers by (system, input id), loaded from and appended to `directory/answers.jsonl`."""

    def __init__(self, directory: str | Path, settings: dict[str, Any], *, fresh: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / NAME
        self.settings = _norm(settings)
        self.note: str | None = None
        self.resumed = 0
        self._lock = self._take_lock()
        self.answers: dict[tuple[str, str], Generation] = {}
        self.loaded: set[tuple[str, str]] = set()  # keys read from an earlier run's log
        self.engines: dict[str, str] = {}  # the grammar engine each constrained system's answers came from
        try:
            heal_jsonl(self.path)
            if self.path.exists() and not fresh and self._load():
                self.resumed = len(self.answers)
                self.loaded = set(self.answers)
            else:
                self.answers.clear()
                atomic_write_text(self.path, jsonl_line({"format": FORMAT, "settings": self.settings}))
            self._out = JsonlAppender(self.path)
        except BaseException:
            self._release()
            raise

    def _take_lock(self) -> IO[str] | None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover  (not POSIX: no lock)
            return None
        f = (self.directory / ".answers.lock").open("w")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise SchemagenError("another eval is writing answers into this report directory", self.directory) from None
        return f

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _load(self) -> bool:
        """Read the log; False when it was made with other settings (or has no header)."""
        with self.path.open(encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        try:
            header = json.loads(lines[0]) if lines else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            self.note = f"{self.path} had no answer-log header: started again"
            return False
        if header.get("settings") != self.settings:
            saved = header.get("settings")
            old: dict[str, Any] = saved if isinstance(saved, dict) else {}
            self.note = (f"the saved answers were made with other settings ({_differences(old, self.settings)}): "
                         f"started again")
            return False
        for lineno, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                key = (str(r["system"]), str(r["id"]))
                gen = Generation(str(r["text"]), int(r["prompt_tokens"]), int(r["completion_tokens"]),
                                 bool(r["truncated"]), float(r["seconds"]))
            except (ValueError, KeyError, TypeError):
                raise SchemagenError(f"line {lineno}: damaged answer record (rerun with --fresh)", self.path) from None
            self.answers.setdefault(key, gen)
            if isinstance(r.get("engine"), str):
                self.engines.setdefault(key[0], r["engine"])
        return True

    def get(self, system: str, item: Item) -> Generation | None:
        return self.answers.get((system, item.key))

    def add(self, system: str, item: Item, gen: Generation, engine: str | None = None) -> None:
        """Record one answer (fsynced); a key already answered keeps its first answer."""
        key = (system, item.key)
        if key in self.answers:
            return
        self.answers[key] = gen
        record: dict[str, Any] = {"system": system, "id": item.key, "text": gen.text,
                                  "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
                                  "truncated": gen.truncated, "seconds": round(gen.seconds, 6)}
        if engine:
            record["engine"] = engine
            self.engines.setdefault(system, engine)
        self._out.append(record)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        self._release()

    def __enter__(self) -> AnswerLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryLog(AnswerLog):
    """The same interface with nothing on disk (`evaluate(write=False)` without a directory)."""

    def __init__(self) -> None:  # noqa: D107 - no file, no lock
        self.answers = {}
        self.loaded = set()
        self.engines = {}
        self.note = None
        self.resumed = 0
        self.path = Path(os.devnull)

    def add(self, system: str, item: Item, gen: Generation, engine: str | None = None) -> None:
        self.answers.setdefault((system, item.key), gen)
        if engine:
            self.engines.setdefault(system, engine)

    def close(self) -> None:
        pass
