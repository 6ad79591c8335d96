"""`schemagen check-data`: datasets whose records break their schema, and stale datasets and adapters."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from ..review.decisions import DECISIONS, check_review
from ..schema import Schema, schema_hash
from . import MAX_BYTES, FileReport, line_of, parse_document, read_text_limited

MANIFEST = "manifest.json"
ADAPTER_META = "schemagen.json"
SPLITS = ("train", "val", "test")
MAX_RECORD_ISSUES = 50  # per JSONL file; the rest are counted


def check_data_paths(paths: Iterable[str | Path], *, schema: str | Path | None = None,
                     max_bytes: int = MAX_BYTES) -> list[FileReport]:
    """One report per dataset, JSONL file or adapter named (directly or by a file inside it)."""
    targets: list[tuple[str, Path]] = []
    reports: list[FileReport] = []
    for p in map(Path, paths):
        kind = _kind(p)
        if kind is None:
            r = FileReport(str(p), kind="unknown")
            if not p.exists():
                r.add("error", "unreadable", "no such file or directory")
            else:
                r.add("error", "unreadable", "not a dataset (no manifest.json), a dataset .jsonl file or an adapter "
                      "(no schemagen.json)")
            r.unreadable = True
            reports.append(r)
            continue
        for k in kind:
            entry = (k, p.parent if p.is_file() and k in ("dataset", "adapter") else p)
            if entry not in targets:
                targets.append(entry)
    datasets = {t.resolve() for k, t in targets if k == "dataset"}
    for kind_name, target in targets:
        if kind_name == "jsonl" and target.parent.resolve() in datasets:
            continue  # its dataset's check covers it
        report = FileReport(str(target), kind=kind_name)
        try:
            if kind_name == "dataset":
                _check_dataset(target, report, max_bytes)
            elif kind_name == "adapter":
                _check_adapter(target, report, max_bytes)
            else:
                _check_jsonl_file(target, report, schema, max_bytes)
        except Exception as exc:  # report, never a traceback
            report.add("error", "internal", f"check failed: {type(exc).__name__}: {exc}")
        reports.append(report)
    return reports


def _kind(p: Path) -> list[str] | None:
    if p.is_dir():
        kinds = [k for k, f in (("dataset", MANIFEST), ("adapter", ADAPTER_META)) if (p / f).is_file()]
        return kinds or None
    if p.name in (MANIFEST, DECISIONS) and p.exists() and (p.parent / MANIFEST).is_file():
        return ["dataset"]  # the review's decisions.jsonl is checked with (and against) its dataset
    if p.name == ADAPTER_META and p.exists():
        return ["adapter"]
    if p.suffix == ".jsonl" and p.exists():
        return ["jsonl"]
    return None


def _read_json(path: Path, report: FileReport, max_bytes: int, *, primary: bool = False) -> tuple[str, Any] | None:
    """(text, value) of a JSON file, or None after recording why not.

    A file the input names itself (`primary`) that cannot be read makes the input unreadable (exit 2);
    a file it points to that is missing or broken is a problem (exit 1).
    """
    sub = FileReport(str(path))
    text = read_text_limited(path, sub, max_bytes)
    ok, value = parse_document(text, path, sub) if text is not None else (False, None)
    report.issues.extend(sub.issues)
    report.unreadable |= primary and sub.unreadable
    return (text, value) if text is not None and ok else None


def _load_schema_file(path: Path, report: FileReport, max_bytes: int) -> dict[str, Any] | None:
    got = _read_json(path, report, max_bytes)
    if got is None:
        return None
    if not isinstance(got[1], dict):
        report.add("error", "bad-schema", "a schema must be a JSON object", path=str(path))
        return None
    return got[1]


def _schema_file_of(dataset: Path, info: dict[str, Any]) -> Path | None:
    """The source schema a manifest names: `path_from_dataset` (relative to the dataset), else `path`."""
    rel = info.get("path_from_dataset")
    if isinstance(rel, str) and (dataset / rel).is_file():
        return Path(os.path.normpath(dataset / rel))
    p = info.get("path")
    if isinstance(p, str) and Path(p).is_file():
        return Path(p)
    return None


def _check_dataset(d: Path, report: FileReport, max_bytes: int) -> None:
    manifest_path = d / MANIFEST
    got = _read_json(manifest_path, report, max_bytes, primary=True)
    if got is None:
        return
    text, manifest = got
    if not isinstance(manifest, dict) or not isinstance(manifest.get("schema"), dict):
        report.add("error", "bad-manifest", "manifest has no `schema` object", path=str(manifest_path))
        return
    info = manifest["schema"]
    stated = info.get("sha256")
    sha_line = line_of(text, '"sha256"')
    report.info["schema_sha256"] = stated
    source = _schema_file_of(d, info)
    raw: dict[str, Any] | None = None
    if source is not None:
        raw = _load_schema_file(source, report, max_bytes)
        report.info["schema_path"] = str(source)
        if raw is not None and schema_hash(raw) != stated:
            report.add("error", "stale-dataset", f"stale dataset: the manifest's schema sha256 {str(stated)[:12]} "
                       f"is not that of {source} today ({schema_hash(raw)[:12]}): the schema changed since "
                       "generation; regenerate the dataset", path=str(manifest_path), line=sha_line)
    else:
        named = info.get("path_from_dataset") or info.get("path") or "(none)"
        report.add("warning", "schema-missing", f"the schema file the manifest names ({named}) is not there: "
                   "staleness not checked; validating against the dataset's schema.json copy",
                   path=str(manifest_path), line=line_of(text, '"path'))
    copy = d / "schema.json"
    if copy.is_file():
        copy_raw = _load_schema_file(copy, report, max_bytes)
        if copy_raw is not None and schema_hash(copy_raw) != stated:
            report.add("error", "schema-copy", f"schema.json's sha256 {schema_hash(copy_raw)[:12]} differs from the "
                       f"manifest's {str(stated)[:12]}", path=str(copy))
        if raw is None:
            raw, source = copy_raw, copy
    if raw is None or source is None:
        report.add("error", "no-schema", "no schema to validate the records against", path=str(manifest_path))
        return
    schema = _schema(raw, source, report)
    if schema is None:
        return
    counts: dict[str, Any] = manifest["counts"] if isinstance(manifest.get("counts"), dict) else {}
    total = 0
    for split in SPLITS:
        f = d / f"{split}.jsonl"
        expected = counts.get(split)
        if not f.is_file():
            if isinstance(expected, int) and expected > 0:
                report.add("error", "missing-split", f"{split}.jsonl is missing (manifest counts {expected})",
                           path=str(f))
            continue
        n = _check_records(f, schema, report)
        total += n
        if isinstance(expected, int) and n != expected:
            report.add("warning", "count-mismatch", f"{n} records but the manifest counts {expected}", path=str(f))
    report.info["records"] = total
    check_review(d, schema, report)  # decisions.jsonl: readable, edits valid; what review fixed is no problem


def _schema(raw: dict[str, Any], source: Path, report: FileReport) -> Schema | None:
    from ..schema import schema_from_dict

    try:
        return schema_from_dict(raw, path=source)
    except SchemagenError as exc:
        report.add("error", "bad-schema", f"cannot validate records: {exc}", path=str(source))
        return None


def _check_jsonl_file(f: Path, report: FileReport, schema_path: str | Path | None, max_bytes: int) -> None:
    if schema_path is not None:
        source = Path(schema_path)
        raw = _load_schema_file(source, report, max_bytes)
    elif (f.parent / MANIFEST).is_file():
        got = _read_json(f.parent / MANIFEST, report, max_bytes)
        info = got[1].get("schema") if got and isinstance(got[1], dict) else None
        found = _schema_file_of(f.parent, info) if isinstance(info, dict) else None
        source = found or f.parent / "schema.json"
        raw = _load_schema_file(source, report, max_bytes)
    else:
        report.add("error", "no-schema", "no manifest.json next to it: pass --schema to say which schema applies")
        report.unreadable = True
        return
    if raw is None:
        return
    schema = _schema(raw, source, report)
    if schema is not None:
        report.info["records"] = _check_records(f, schema, report)


def _check_records(f: Path, schema: Schema, report: FileReport) -> int:
    """Validate every record's assistant answer; returns the number of records read."""
    from ..dataset import pair_of

    n = shown = hidden = 0
    path = str(f)

    def problem(code: str, message: str, lineno: int) -> None:
        nonlocal shown, hidden
        if shown < MAX_RECORD_ISSUES:
            report.add("error", code, message, path=path, line=lineno)
            shown += 1
        else:
            hidden += 1

    try:
        with f.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                n += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    problem("json-syntax", f"not valid JSON ({exc.msg}, column {exc.colno})", lineno)
                    continue
                if not isinstance(record, dict):
                    problem("bad-record", "a record must be a JSON object", lineno)
                    continue
                try:
                    _, answer = pair_of(record, f, lineno)
                except SchemagenError as exc:
                    problem("bad-record", str(exc).split(": ", 2)[-1], lineno)
                    continue
                try:
                    instance = json.loads(answer)
                except json.JSONDecodeError as exc:
                    problem("answer-not-json", f"the assistant answer is not JSON ({exc.msg})", lineno)
                    continue
                errors = schema.errors(instance)
                if errors:
                    first = errors[0]
                    where = "/" + "/".join(str(x) for x in first.absolute_path)
                    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
                    problem("invalid-record", f"the answer violates the schema at {where}: "
                            f"{_short(first.message)}{more}", lineno)
    except UnicodeDecodeError as exc:
        report.add("error", "unreadable", f"not UTF-8 text ({exc.reason}) after line {n}", path=path)
    except OSError as exc:
        report.add("error", "unreadable", f"cannot read: {exc.strerror or exc}", path=path)
        report.unreadable = True
    if hidden:
        report.add("error", "invalid-record", f"{hidden} more bad records not shown", path=path)
    return n


def _resolve(p: str, base: Path) -> Path | None:
    """A path from adapter metadata: absolute, else relative to the adapter dir, else to the cwd."""
    q = Path(p)
    for cand in ([q] if q.is_absolute() else [base / q, q]):
        if cand.exists():
            return cand
    return None


def _check_adapter(d: Path, report: FileReport, max_bytes: int) -> None:
    meta_path = d / ADAPTER_META
    got = _read_json(meta_path, report, max_bytes, primary=True)
    if got is None:
        return
    text, meta = got
    where: dict[str, Any] = {"path": str(meta_path), "line": line_of(text, '"schema_sha256"')}
    if not isinstance(meta, dict):
        report.add("error", "bad-adapter", f"{ADAPTER_META} is not a JSON object", path=str(meta_path))
        return
    stated = meta.get("schema_sha256")
    if not isinstance(stated, str) or not stated:
        report.add("error", "bad-adapter", "no schema_sha256", path=str(meta_path))
        return
    report.info["schema_sha256"] = stated
    embedded = meta.get("schema")
    if isinstance(embedded, dict) and schema_hash(embedded) != stated:
        report.add("error", "stale-adapter", f"schema_sha256 {stated[:12]} is not the hash of the schema stored "
                   f"with the adapter ({schema_hash(embedded)[:12]})", **where)
    schema_files: list[Path] = []
    for key in ("schema_path", "schema_file"):
        if isinstance(meta.get(key), str):
            found = _resolve(meta[key], d)
            if found is not None:
                schema_files.append(found)
    ds: dict[str, Any] = meta["dataset"] if isinstance(meta.get("dataset"), dict) else {}
    manifest_ref = ds.get("manifest")
    if isinstance(manifest_ref, dict):  # a snapshot of the manifest at training time
        snap = manifest_ref.get("schema", {}).get("sha256") if isinstance(manifest_ref.get("schema"), dict) else None
        if snap and snap != stated:
            report.add("error", "stale-adapter", f"schema_sha256 {stated[:12]} differs from its dataset "
                       f"manifest's {str(snap)[:12]}", **where)
    manifest_file: Path | None = None
    if isinstance(manifest_ref, str):
        manifest_file = _resolve(manifest_ref, d)
    if manifest_file is None and isinstance(ds.get("path"), str):
        ds_dir = _resolve(ds["path"], d)
        if ds_dir is not None and (ds_dir / MANIFEST).is_file():
            manifest_file = ds_dir / MANIFEST
    if manifest_file is not None and manifest_file.is_dir():
        manifest_file = manifest_file / MANIFEST
    if manifest_file is not None and manifest_file.is_file():
        got_m = _read_json(manifest_file, report, max_bytes)
        minfo = got_m[1].get("schema") if got_m and isinstance(got_m[1], dict) else None
        if isinstance(minfo, dict):
            if minfo.get("sha256") != stated:
                report.add("error", "stale-adapter", f"stale adapter: trained for schema {stated[:12]}, but its "
                           f"dataset {manifest_file} is now for {str(minfo.get('sha256'))[:12]}: retrain", **where)
            source = _schema_file_of(manifest_file.parent, minfo)
            if source is not None:
                schema_files.append(source)
    elif ds.get("path") or isinstance(manifest_ref, str):
        report.add("warning", "dataset-missing", f"its dataset ({ds.get('path') or manifest_ref}) is not there: "
                   "staleness against the dataset not checked", **where)
    for source in dict.fromkeys(schema_files):
        raw = _load_schema_file(source, report, max_bytes)
        if raw is not None and schema_hash(raw) != stated:
            report.add("error", "stale-adapter", f"stale adapter: trained for schema {stated[:12]}, but {source} "
                       f"is now {schema_hash(raw)[:12]} (changed since training): retrain", **where)
    report.info["schema_files"] = [str(s) for s in dict.fromkeys(schema_files)]


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
