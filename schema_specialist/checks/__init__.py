"""Pre-commit checks for schemas, datasets and adapters: problems as data, rendered for humans or machines.

`check_schema_files` (schemas: metaschema, `$ref`s, engines, keyword coverage, risky regexes) and
`check_data_paths` (datasets and adapters: record validity, stale hashes) return one `FileReport` per
input and never raise for a bad input: every file is checked even when another one is broken.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning", "note"]
MAX_BYTES = 5 * 1024 * 1024  # inputs above this are refused unread (one line, exit 2)

EXIT_OK, EXIT_PROBLEMS, EXIT_UNREADABLE = 0, 1, 2


@dataclass
class Issue:
    """One finding: where (file, optional line and JSON pointer), how bad, what kind, and why."""

    severity: Severity
    code: str
    message: str
    path: str
    line: int | None = None
    pointer: str | None = None

    def render(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        at = f"{self.pointer}: " if self.pointer else ""
        return f"{where}: {self.severity}: {at}{self.message} [{self.code}]"


@dataclass
class FileReport:
    """Everything found about one input (a schema file, a dataset, an adapter)."""

    path: str
    kind: str = "schema"
    unreadable: bool = False
    issues: list[Issue] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, severity: Severity, code: str, message: str, *, path: str | None = None,
            line: int | None = None, pointer: str | None = None) -> Issue:
        issue = Issue(severity, code, " ".join(str(message).split()), path or self.path, line, pointer)
        self.issues.append(issue)
        return issue

    def count(self, severity: Severity) -> int:
        return sum(1 for i in self.issues if i.severity == severity)

    def failed(self, strict: bool = False) -> bool:
        return self.unreadable or self.count("error") > 0 or (strict and self.count("warning") > 0)

    @property
    def status(self) -> str:
        return "unreadable" if self.unreadable else "problems" if self.count("error") else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "status": self.status,
                "issues": [asdict(i) for i in self.issues], **self.info}


def exit_code(reports: list[FileReport], strict: bool = False) -> int:
    """2 when an input could not be read, else 1 when any has problems, else 0."""
    if any(r.unreadable for r in reports):
        return EXIT_UNREADABLE
    return EXIT_PROBLEMS if any(r.failed(strict) for r in reports) else EXIT_OK


def render_human(reports: list[FileReport], *, quiet: bool = False, strict: bool = False) -> str:
    """One line per issue (`file[:line]: severity: message [code]`), an `ok` line per clean input, a summary."""
    lines: list[str] = []
    for r in reports:
        shown = [i for i in r.issues if not (quiet and i.severity == "note")]
        if not r.failed(strict) and not quiet:
            lines.append(f"{r.path}: ok{_ok_detail(r)}")
        lines.extend(i.render() for i in shown)
    n_bad = sum(1 for r in reports if r.failed(strict))
    n_unread = sum(1 for r in reports if r.unreadable)
    errors = sum(r.count("error") for r in reports)
    warnings = sum(r.count("warning") for r in reports)
    lines.append(f"{len(reports)} checked: {len(reports) - n_bad} ok, {n_bad} with problems"
                 f"{f' ({n_unread} unreadable)' if n_unread else ''}; {errors} errors, {warnings} warnings")
    return "\n".join(lines)


def _ok_detail(r: FileReport) -> str:
    bits = []
    if r.info.get("draft"):
        bits.append(str(r.info["draft"]))
    engines = r.info.get("engines") or {}
    compiled = [n for n, e in engines.items() if e.get("compiles")]
    if compiled:
        bits.append("compiles with " + ", ".join(compiled))
    if r.info.get("records") is not None:
        bits.append(f"{r.info['records']} records valid")
    return f" ({'; '.join(bits)})" if bits else ""


def render_json(reports: list[FileReport], *, strict: bool = False) -> str:
    """The machine form: every report, a summary and the exit code."""
    summary = {
        "checked": len(reports), "failed": sum(1 for r in reports if r.failed(strict)),
        "unreadable": sum(1 for r in reports if r.unreadable),
        "errors": sum(r.count("error") for r in reports), "warnings": sum(r.count("warning") for r in reports),
    }
    return json.dumps({"files": [r.to_dict() for r in reports], "summary": summary,
                       "exit_code": exit_code(reports, strict)}, indent=2, ensure_ascii=False)


def read_text_limited(path: Path, report: FileReport, max_bytes: int = MAX_BYTES) -> str | None:
    """The text of `path`, or None after recording why it cannot be read (missing, too big, not UTF-8)."""
    try:
        if not path.exists():
            report.add("error", "unreadable", "no such file")
        elif path.is_dir():
            report.add("error", "unreadable", "is a directory")
        elif path.stat().st_size > max_bytes:
            report.add("error", "too-large", f"file is {path.stat().st_size / 2**20:.1f} MiB, over the "
                       f"{max_bytes / 2**20:g} MiB limit (not read)")
        else:
            return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        report.add("error", "unreadable", f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        report.add("error", "unreadable", f"cannot read: {exc.strerror or exc}")
    report.unreadable = True
    return None


def parse_document(text: str, path: Path, report: FileReport) -> tuple[bool, Any]:
    """(ok, value) of a JSON (or, by extension, YAML) document; a syntax error is one issue with its line."""
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return True, yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            report.add("error", "yaml-syntax", f"not valid YAML: {problem}", line=line)
            return False, None
    try:
        return True, json.loads(text)
    except json.JSONDecodeError as exc:
        report.add("error", "json-syntax", f"not valid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno)
        return False, None
    except RecursionError:
        report.add("error", "json-syntax", "not valid JSON: nested too deeply")
        return False, None


def line_of(text: str, needle: str) -> int | None:
    """1-based line of the first occurrence of `needle` in `text`, None if absent."""
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else None


__all__ = ["Issue", "FileReport", "MAX_BYTES", "exit_code", "render_human", "render_json",
           "read_text_limited", "parse_document", "line_of"]
