"""`schemagen check`: what would break a schema at generate/train/serve time, found before commit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlparse

from ..schema import DRAFTS, iter_subschemas, refs_in, schema_hash
from . import MAX_BYTES, FileReport, parse_document, read_text_limited
from .regex_risk import has_lookaround, risky_pattern

SCHEMA_SUFFIXES = (".json", ".yaml", ".yml")
MAX_ISSUES_PER_KIND = 20
# Keys that hold subschemas or identify things: no constraint of their own, nothing to enforce.
_NO_CONSTRAINT = frozenset({
    "$defs", "definitions", "$id", "id", "$schema", "$anchor", "$dynamicAnchor", "$recursiveAnchor",
    "$vocabulary", "$comment", "contentSchema", "title", "description", "default", "examples", "readOnly",
    "writeOnly", "deprecated", "contentMediaType", "contentEncoding", "format",
})


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a directory stands for the schema files below it (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SCHEMA_SUFFIXES))
        else:
            out.append(p)
    return out


def check_schema_files(paths: Iterable[str | Path], *, compile: bool = True, engines: list[str] | None = None,
                       max_bytes: int = MAX_BYTES) -> list[FileReport]:
    """One report per schema file; a broken file never stops the others."""
    return [check_schema_file(p, compile=compile, engines=engines, max_bytes=max_bytes)
            for p in expand_paths(paths)]


def check_schema_file(path: str | Path, *, compile: bool = True, engines: list[str] | None = None,
                      max_bytes: int = MAX_BYTES) -> FileReport:
    """Every check on one schema file, problems recorded in the report (never raised)."""
    path = Path(path)
    report = FileReport(str(path), kind="schema")
    try:
        _check(path, report, compile=compile, engine_names=engines, max_bytes=max_bytes)
    except RecursionError:
        report.add("error", "too-deep", "schema nested too deeply to check")
    except Exception as exc:  # a check must report, never crash: one line, no traceback
        report.add("error", "internal", f"check failed: {type(exc).__name__}: {exc}")
    return report


def _check(path: Path, report: FileReport, *, compile: bool, engine_names: list[str] | None,
           max_bytes: int) -> None:
    import jsonschema
    from jsonschema.validators import validator_for

    text = read_text_limited(path, report, max_bytes)
    if text is None:
        return
    ok, raw = parse_document(text, path, report)
    if not ok:
        return
    if isinstance(raw, bool):
        report.add("error", "not-object", f"boolean schema `{str(raw).lower()}` has no structure to learn")
        return
    if not isinstance(raw, dict):
        report.add("error", "not-object", f"a schema must be a JSON object, got {type(raw).__name__}")
        return
    uri = str(raw.get("$schema", "")).rstrip("#")
    if uri and uri not in DRAFTS:
        report.add("error", "draft", f"unsupported $schema {uri!r} (drafts 4, 6, 7, 2019-09 and 2020-12 are); "
                   "checked as 2020-12")
        cls: Any = jsonschema.Draft202012Validator
    else:
        cls = validator_for(raw, default=jsonschema.Draft202012Validator)
    draft = DRAFTS.get(uri, "draft2020-12")
    report.info.update(draft=draft, sha256=schema_hash(raw), title=raw.get("title"))

    fatal = _metaschema(raw, cls, report)
    fatal |= _regexes(raw, report)
    fatal |= _refs(raw, path, cls, report, max_bytes)
    _keywords(raw, cls, report)
    _engines(raw, report, compile=compile and not fatal, skipped_for_errors=compile and fatal,
             names=engine_names)


def _metaschema(raw: dict[str, Any], cls: Any, report: FileReport) -> bool:
    """Validate against the schema's own draft metaschema; one issue per distinct location."""
    from jsonschema.exceptions import best_match

    validator = cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)
    seen: set[str] = set()
    n = 0
    for err in validator.iter_errors(raw):
        if err.validator == "format" and err.validator_value == "regex":
            continue  # reported (with the regex error) by _regexes
        pointer = "#/" + "/".join(str(x) for x in err.absolute_path) if err.absolute_path else "#"
        message = err.message
        if err.context:  # anyOf/oneOf: say which alternative came closest
            message += f" ({best_match(err.context).message})"
        if pointer in seen:
            continue
        seen.add(pointer)
        n += 1
        if n > MAX_ISSUES_PER_KIND:
            report.add("error", "metaschema", "more metaschema errors not shown")
            break
        report.add("error", "metaschema", f"invalid schema: {_short(message)}", pointer=pointer)
    return n > 0


def _regexes(raw: dict[str, Any], report: FileReport) -> bool:
    """Patterns that Python's `re` (used by validation) rejects, and patterns prone to catastrophic backtracking."""
    bad = False
    for pointer, sub in iter_subschemas(raw):
        found: list[tuple[str, str]] = []
        if isinstance(sub.get("pattern"), str):
            found.append((f"{pointer}/pattern", sub["pattern"]))
        if isinstance(sub.get("patternProperties"), dict):
            found.extend((f"{pointer}/patternProperties", k) for k in sub["patternProperties"])
        for where, pattern in found:
            try:
                re.compile(pattern)
            except (re.error, RecursionError, OverflowError) as exc:
                report.add("error", "bad-regex", f"regex {pattern!r} does not compile: {exc}", pointer=where)
                bad = True
                continue
            if has_lookaround(pattern):
                report.add("warning", "regex-lookaround", f"regex {pattern!r} uses look-around: outlines_core and "
                           "llguidance reject it, xgrammar ignores it while decoding (validation still checks it)",
                           pointer=where)
            why = risky_pattern(pattern)
            if why:
                report.add("error", "regex-backtracking", f"regex {pattern!r} risks catastrophic backtracking: "
                           f"{why}; validation runs it on untrusted model output", pointer=where)
    return bad


def _refs(raw: dict[str, Any], path: Path, cls: Any, report: FileReport, max_bytes: int) -> bool:
    """Remote `$ref`s (need the network) and local ones that do not resolve."""
    import referencing
    import referencing.jsonschema

    from ..schema import Schema, is_remote_ref

    bad = False
    resources: dict[str, Any] = {}
    missing: set[str] = set()
    pending: list[tuple[dict[str, Any], Path, bool]] = [(raw, path, True)]
    seen: set[str] = set()
    while pending:
        doc, doc_path, is_root = pending.pop()
        for pointer, ref in refs_in(doc):
            target = urldefrag(ref).url
            if is_remote_ref(ref):
                if is_root:
                    report.add("error", "remote-ref", f"remote $ref {ref!r} needs the network: decoding engines and "
                               "offline validation cannot fetch it (copy it locally)", pointer=pointer)
                    bad = True
                continue
            if not target or target in seen:
                continue
            seen.add(target)
            file = doc_path.parent / urlparse(target).path
            if not file.is_file():
                if raw.get("$id") or doc.get("$id"):
                    continue  # maybe an $id-relative name: resolution below decides
                missing.add(target)
                report.add("error", "dangling-ref", f"$ref {ref!r}: no such file {file}",
                           pointer=pointer if is_root else f"{target} {pointer}")
                bad = True
                continue
            try:
                if file.stat().st_size > max_bytes:
                    raise ValueError(f"over the {max_bytes / 2**20:g} MiB limit")
                sub = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                missing.add(target)
                report.add("error", "dangling-ref", f"$ref {ref!r}: cannot load {file}: {_short(str(exc))}",
                           pointer=pointer if is_root else None)
                bad = True
                continue
            resources[target] = referencing.Resource.from_contents(
                sub, default_specification=referencing.jsonschema.DRAFT202012)
            if isinstance(sub, dict):
                pending.append((sub, file, False))
    registry: referencing.Registry = referencing.Registry().with_resources(resources.items())
    schema = Schema(raw=raw, path=path, _registry=registry)
    for pointer, ref in refs_in(raw):
        if is_remote_ref(ref) or urldefrag(ref).url in missing:
            continue
        try:
            schema.resolve(ref)
        except Exception:
            report.add("error", "dangling-ref", f"$ref {ref!r} does not resolve", pointer=pointer)
            bad = True
    return bad


def typo_of(key: str, keywords: set[str] | frozenset[str]) -> str | None:
    """The keyword `key` looks like a misspelling of (same letters in another case, or close: `minLenght`,
    `mininum`, `oneof`), or None. A leading `_` or `$` marks a deliberate private keyword (`_format`)."""
    import difflib

    if key[:1] in "_$":
        return None
    for word in keywords:
        if word.lower() == key.lower():
            return word
    close = difflib.get_close_matches(key, sorted(keywords), n=1, cutoff=0.85)
    return close[0] if close else None


def _keywords(raw: dict[str, Any], cls: Any, report: FileReport) -> None:
    """Keywords (and formats) that neither decoding nor validation enforces, or only decoding does.

    An unknown format, or an unknown keyword that looks like a misspelt constraint (`minLenght`), is an
    error: the schema means a rule nothing enforces. Any other unknown keyword (Snowplow's `self`,
    `_format`, a tool's `category`) is a warning: JSON Schema reads it as an annotation."""
    from ..engines import ENGINES
    from ..engines.base import ANNOTATIONS

    decoding: set[str] = set()
    for engine in ENGINES.values():
        decoding |= set(engine.enforces)
    known = set(cls.VALIDATORS) | _NO_CONSTRAINT | ANNOTATIONS
    if "if" in known:
        known |= {"then", "else"}
    formats = set(cls.FORMAT_CHECKER.checkers)
    nothing: dict[str, str] = {}
    decoding_only: dict[str, str] = {}
    for pointer, sub in iter_subschemas(raw):
        for key, value in sub.items():
            if key.startswith("x-"):
                continue
            if key == "format" and isinstance(value, str):
                name = f"format:{value}"
                if value not in formats and name not in decoding:
                    nothing.setdefault(name, pointer)
                elif value not in formats:
                    decoding_only.setdefault(name, pointer)
            elif key not in known and key not in decoding:
                nothing.setdefault(key, pointer)
            elif key not in known:
                decoding_only.setdefault(key, pointer)
    constraints = (set(cls.VALIDATORS) | decoding) - _NO_CONSTRAINT - ANNOTATIONS
    rules: list[tuple[str, str, str | None]] = []  # (key, pointer, the constraint it misspells)
    unknown: list[tuple[str, str, str | None]] = []  # (key, pointer, the annotation it misspells)
    for key, pointer in nothing.items():
        if key.startswith("format:"):
            rules.append((key, pointer, None))
        elif (meant := typo_of(key, constraints)) is not None:
            rules.append((key, pointer, meant))
        else:
            unknown.append((key, pointer, typo_of(key, ANNOTATIONS | _NO_CONSTRAINT)))
    for key, pointer, meant in rules[:MAX_ISSUES_PER_KIND]:
        what = f"format {key[7:]!r}" if meant is None else f"keyword {key!r}"
        hint = "a typo? a custom format has no checker" if meant is None else f"a typo of {meant!r}?"
        report.add("error", "unsupported-keyword", f"{what} is enforced by nothing: no decoding engine and not "
                   f"{report.info.get('draft')} validation ({hint})", pointer=pointer)
    for key, pointer, meant in unknown[:MAX_ISSUES_PER_KIND]:
        hint = f" (a typo of {meant!r}?)" if meant else ""
        report.add("warning", "unknown-keyword", f"keyword {key!r} is no JSON Schema keyword: kept as an "
                   f"annotation, it constrains nothing{hint}", pointer=pointer)
    for key, pointer in list(decoding_only.items())[:MAX_ISSUES_PER_KIND]:
        report.add("warning", "decoding-only", f"{key!r} is enforced while decoding but ignored by "
                   f"{report.info.get('draft')} validation", pointer=pointer)
    report.info["unsupported"] = sorted(nothing)


def _engines(raw: dict[str, Any], report: FileReport, *, compile: bool, skipped_for_errors: bool,
             names: list[str] | None) -> None:
    """Per engine: keyword coverage, predicted rejections, and (when asked) a real compile."""
    from ..engines import ENGINES, rank_engines

    names = [n for n in (names or list(ENGINES)) if n in ENGINES]
    engines: dict[str, dict[str, Any]] = {}
    for name in names:
        enforced, not_enforced, rejected = ENGINES[name].coverage(raw)
        engines[name] = {"available": ENGINES[name].available(), "compiles": None, "error": None,
                         "not_enforced": sorted(not_enforced - _NO_CONSTRAINT), "rejected": sorted(rejected)}
    report.info["engines"] = engines
    if compile:
        from .compile import compile_all

        results = compile_all(raw, names)
        for name, res in results.items():
            engines[name].update(res)
        tried = [n for n in names if engines[n]["compiles"] is not None]
        if not tried:
            reason = next(iter(results.values()))["error"] if results else "no engine selected"
            report.add("warning", "compile-skipped", f"compile checks skipped: {reason}")
        elif not any(engines[n]["compiles"] for n in tried):
            report.add("error", "no-engine", "no constraint engine compiles the schema: " + "; ".join(
                f"{n}: {engines[n]['error']}" for n in tried))
        else:
            for n in tried:
                if not engines[n]["compiles"]:
                    report.add("warning", "engine-compile", f"{n} cannot compile the schema ({engines[n]['error']}); "
                               "`--engine auto` picks another")
    elif skipped_for_errors:
        report.add("note", "compile-skipped", "compile checks skipped: fix the errors above first")
    else:
        clean = [n for n in names if not engines[n]["rejected"]]
        for n in names:
            if engines[n]["rejected"]:
                report.add("warning" if clean else "error", "engine-rejects",
                           f"{n} rejects {', '.join(engines[n]['rejected'])}"
                           + ("; `--engine auto` picks another" if clean else "; no engine takes this schema"))
    ranked = [n for n in rank_engines(raw, names) if engines[n]["compiles"] is not False and not
              (engines[n]["compiles"] is None and engines[n]["rejected"])]
    chosen = ranked[0] if ranked else None
    report.info["decoding_engine"] = chosen
    unsupported = set(report.info.get("unsupported") or [])
    if chosen:
        validation_only = [k for k in engines[chosen]["not_enforced"] if k not in unsupported]
        report.info["validation_only"] = validation_only
        if validation_only:
            report.add("note", "validation-only", f"decoding with {chosen} will not enforce "
                       f"{', '.join(validation_only)}: validation must reject violations")


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
