"""The review decisions: an append-only log in the dataset directory, its replay, and its use by train.

`decisions.jsonl` holds one line per decision, appended, flushed and fsynced before it is acknowledged:

    {"seq": 7, "pair": "c000003", "sha": "1f0c...", "version": 2, "action": "edit",
     "answer": "{...}", "who": "ana", "at": "2026-01-02T03:04:05.678Z"}

- `pair` is the pair's `schemagen.id` (or `split:line` when it has none) and `sha` a digest of its original
  messages: a decision only ever applies to the pair it was made on, so a regenerated dataset whose ids
  come back with other content starts unreviewed (the old lines are counted as stale).
- `action` is `approve`, `reject` (with a `reason`), `edit` (with the new `answer`, compact JSON that
  validates against the schema, format checker included; an edit also approves) or `reset` (back to
  unreviewed, the original answer). The last decision on a pair wins; an edit stays in force through a
  later approve or reject until a reset.
- **Conflicts.** A pair's version is the number of decisions applied to it. Every write names the version
  it was made against (`base`); when the pair has moved on since (another tab, another server on the same
  directory) the write is refused with `Conflict` (HTTP 409) and the current state, never merged or lost
  silently. Writers hold an exclusive `flock` on the log while they read its tail, check and append, so
  two processes serialize too; `seq` is the line's place in the log (what other tabs poll for). Replay
  ignores, and counts, a line whose version does not follow its pair's (a merged or hand-edited log).
- A torn last line (a kill mid-write: it was never acknowledged) is ignored by readers and dropped by the
  next writer. The generated files (train/val/test.jsonl, rejected.jsonl) are never rewritten.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import getpass
import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dataset import MANIFEST, SPLITS, jsonl_line, pair_of, read_jsonl
from ..errors import SchemagenError

if TYPE_CHECKING:
    from ..checks import FileReport
    from ..schema import Schema

DECISIONS = "decisions.jsonl"
ACTIONS = ("approve", "reject", "edit", "reset")
MAX_REASON = 500
MAX_WHO = 64
MAX_ANSWER = 100_000

Messages = list[dict[str, str]]


class Conflict(Exception):
    """A write made against a version of the pair that is no longer current."""

    def __init__(self, pair: str, base: int, current: PairState) -> None:
        super().__init__(f"pair {pair} is at version {current.version}, not {base}: it changed since it was read")
        self.pair, self.base, self.current = pair, base, current


class BadDecision(ValueError):
    """A decision that cannot be recorded (unknown action, no reason, an answer that does not validate)."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


# ---- pairs -------------------------------------------------------------------------------------

@dataclass
class Pair:
    """One generated pair as read from its split file, with the identity decisions refer to."""

    key: str
    sha: str
    split: str
    line: int
    prompt: Messages
    answer: str
    meta: dict[str, Any]

    @property
    def question(self) -> str:
        users = [m["content"] for m in self.prompt if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def source(self) -> str | None:
        src = self.meta.get("source")
        return str(src) if src is not None else None


def pair_digest(messages: Any) -> str:
    """The first 16 hex digits of the sha256 of a record's messages (prompt and original answer)."""
    blob = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def read_pairs(directory: str | Path, split: str, *, strict: bool = True) -> list[Pair]:
    """The pairs of one split file; `strict=False` skips malformed records instead of raising."""
    path = Path(directory) / f"{split}.jsonl"
    pairs = []
    rows = read_jsonl(path, strict=strict)
    while True:
        try:
            lineno, rec = next(rows)
        except StopIteration:
            break
        except SchemagenError:
            if strict:
                raise
            continue
        try:
            prompt, answer = pair_of(rec, path, lineno)
        except SchemagenError:
            if strict:
                raise
            continue
        found = rec.get("schemagen")
        meta: dict[str, Any] = found if isinstance(found, dict) else {}
        ident = meta.get("id")
        key = ident if isinstance(ident, str) and ident else f"{split}:{lineno}"
        pairs.append(Pair(key, pair_digest(rec["messages"]), split, lineno, prompt, answer, meta))
    return pairs


# ---- replay ------------------------------------------------------------------------------------

@dataclass
class PairState:
    """Where review left one pair: its verdict, its edited answer (if any) and who decided when."""

    version: int = 0
    verdict: str | None = None  # "approved" | "rejected" | None (unreviewed)
    answer: str | None = None  # the edit in force
    reason: str | None = None
    who: str | None = None
    at: str | None = None
    seq: int = 0
    line: int = 0  # the decisions.jsonl line of the last decision
    edit_line: int = 0  # ... and of the edit in force

    @property
    def status(self) -> str:
        """unreviewed, approved, edited or rejected (disjoint: an approved pair with an edit is `edited`)."""
        if self.verdict == "rejected":
            return "rejected"
        if self.verdict == "approved":
            return "edited" if self.answer is not None else "approved"
        return "unreviewed"

    def apply(self, d: dict[str, Any], line: int) -> None:
        action = d["action"]
        if action == "approve":
            self.verdict, self.reason = "approved", None
        elif action == "reject":
            self.verdict, self.reason = "rejected", d["reason"]
        elif action == "edit":
            self.verdict, self.reason, self.answer, self.edit_line = "approved", None, d["answer"], line
        else:  # reset
            self.verdict = self.answer = self.reason = None
            self.edit_line = 0
        self.version, self.who, self.at, self.seq, self.line = d["version"], d["who"], d["at"], d["seq"], line


def _field(d: dict[str, Any], name: str, kind: type, line: int, path: Path) -> Any:
    value = d.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, str) and not value):
        raise SchemagenError(f"line {line}: a decision needs `{name}` ({kind.__name__})", path)
    return value


def parse_decision(d: dict[str, Any], line: int, path: Path) -> dict[str, Any]:
    """Check one log line's shape; a malformed one is a one-line error naming the file and line."""
    for name in ("pair", "sha", "who", "at"):
        _field(d, name, str, line, path)
    for name in ("seq", "version"):
        if _field(d, name, int, line, path) < 1:
            raise SchemagenError(f"line {line}: `{name}` must be a positive integer", path)
    if d.get("action") not in ACTIONS:
        raise SchemagenError(f"line {line}: `action` must be one of {', '.join(ACTIONS)}", path)
    if d["action"] == "edit":
        _field(d, "answer", str, line, path)
    if d["action"] == "reject":
        _field(d, "reason", str, line, path)
    return d


@dataclass
class Replay:
    """The state of every pair after the decisions read so far, in log order."""

    states: dict[tuple[str, str], PairState] = field(default_factory=dict)
    seq: int = 0
    decisions: int = 0
    conflicts: list[int] = field(default_factory=list)  # lines ignored: their version did not follow
    reviewers: dict[str, int] = field(default_factory=dict)

    def state(self, key: str, sha: str) -> PairState:
        return self.states.get((key, sha)) or PairState()

    def feed(self, d: dict[str, Any], line: int) -> tuple[str, str] | None:
        """Apply one parsed decision; returns the (pair, sha) it changed, None for a conflicting line."""
        k = (d["pair"], d["sha"])
        self.seq = max(self.seq, d["seq"])
        state = self.states.setdefault(k, PairState())
        if d["version"] != state.version + 1:
            self.conflicts.append(line)
            return None
        state.apply(d, line)
        self.decisions += 1
        self.reviewers[d["who"]] = self.reviewers.get(d["who"], 0) + 1
        return k


def _parse_lines(data: bytes, first_line: int, path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for i, raw in enumerate(data.split(b"\n")[:-1]):
        line = first_line + i
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SchemagenError(f"line {line}: not valid JSON ({str(exc)[:80]})", path) from None
        if not isinstance(d, dict):
            raise SchemagenError(f"line {line}: a decision must be a JSON object", path)
        out.append((line, parse_decision(d, line, path)))
    return out


def replay_file(path: str | Path) -> Replay:
    """Replay a decisions log (a torn last line is ignored; a malformed complete line is an error)."""
    path = Path(path)
    replay = Replay()
    if path.exists():
        data = path.read_bytes()
        for line, d in _parse_lines(data[: data.rfind(b"\n") + 1], 1, path):
            replay.feed(d, line)
    return replay


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_reviewer() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): still a decision, by someone
        return "unknown"


def inside(directory: Path, name: str) -> Path:
    """`directory/name`, refused when it resolves outside the directory (a symlink, `..`)."""
    path = directory / name
    root = directory.resolve()
    if not path.resolve().is_relative_to(root):
        raise SchemagenError("resolves outside the dataset directory; refused", path)
    return path


class DecisionLog:
    """The decisions log of one dataset directory: replayed on open, appended one fsynced line per decision."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = inside(self.directory, DECISIONS)
        self.replay = Replay()
        self._offset = 0
        self._next_line = 1
        self._lock = threading.Lock()
        with self._lock:
            self._catch_up()

    def _reset(self) -> None:
        self.replay, self._offset, self._next_line = Replay(), 0, 1

    def _catch_up(self) -> list[tuple[str, str]]:
        """Read the complete lines appended since last time (by anyone); returns the pairs they changed."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            if self._offset:
                self._reset()
            return []
        if size < self._offset:  # replaced or truncated by hand: start over
            self._reset()
        if size == self._offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        rows = _parse_lines(data[:end], self._next_line, self.path)
        self._offset += end
        self._next_line += data[:end].count(b"\n")
        changed = []
        for line, d in rows:
            k = self.replay.feed(d, line)
            if k is not None:
                changed.append(k)
        return changed

    def refresh(self) -> list[tuple[str, str]]:
        """Pick up decisions other processes appended."""
        with self._lock:
            return self._catch_up()

    def state(self, key: str, sha: str) -> PairState:
        return self.replay.state(key, sha)

    def append(self, pair: str, sha: str, action: str, base: int, *, answer: str | None = None,
               reason: str | None = None, who: str | None = None,
               then: Callable[[Replay], None] | None = None) -> tuple[dict[str, Any], PairState]:
        """Record one decision made against version `base` of the pair; durable when this returns.

        Raises `Conflict` when the pair is no longer at `base`, `BadDecision` for a malformed decision.
        `then(replay)` runs after the write, still under the log's lock (the manifest's summary)."""
        if action not in ACTIONS:
            raise BadDecision(f"action must be one of {', '.join(ACTIONS)}")
        if action == "reject":
            reason = " ".join(str(reason or "").split())
            if not reason:
                raise BadDecision("a rejection needs a reason")
            if len(reason) > MAX_REASON:
                raise BadDecision(f"a reason is at most {MAX_REASON} characters")
        if action == "edit" and not isinstance(answer, str):
            raise BadDecision("an edit needs the new answer")
        who = " ".join(str(who or default_reviewer()).split())[:MAX_WHO] or "unknown"
        with self._lock:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._catch_up()
                if os.fstat(fd).st_size > self._offset:  # a torn last line: a writer killed mid-write, never
                    os.ftruncate(fd, self._offset)  # acknowledged (writers hold the lock while writing)
                current = self.replay.state(pair, sha)
                if current.version != base:
                    raise Conflict(pair, base, current)
                record: dict[str, Any] = {"seq": self.replay.seq + 1, "pair": pair, "sha": sha,
                                          "version": base + 1, "action": action}
                if action == "edit":
                    record["answer"] = answer
                if action == "reject":
                    record["reason"] = reason
                record.update(who=who, at=now())
                data = jsonl_line(record).encode("utf-8")
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
                if created:
                    _fsync_dir(self.directory)
                self._catch_up()
                if then is not None:
                    then(self.replay)
            finally:
                os.close(fd)  # closing drops the flock
        return record, self.replay.state(pair, sha)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- answers -----------------------------------------------------------------------------------

def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_answer(text: Any, schema: Schema) -> tuple[str | None, list[dict[str, str]]]:
    """(compact answer, []) when `text` is JSON that validates (format checker included), else (None, errors)."""
    if not isinstance(text, str):
        return None, [{"path": "", "message": "the answer must be a string of JSON"}]
    if len(text) > MAX_ANSWER:
        return None, [{"path": "", "message": f"the answer is over {MAX_ANSWER} characters"}]
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        return None, [{"path": "", "message": f"not JSON: {str(exc)[:160]}"}]
    try:
        errors = schema.errors(value)
    except SchemagenError as exc:
        return None, [{"path": "", "message": str(exc)}]
    if errors:
        return None, [{"path": "/" + "/".join(str(p) for p in e.absolute_path),
                       "message": " ".join(e.message.split())[:300]} for e in errors[:20]]
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")), []


def dataset_schema(directory: str | Path, raw: dict[str, Any]) -> Schema:
    """The dataset's schema as a validator, located where the manifest says (for relative `$ref`s)."""
    from ..schema import schema_from_dict

    d = Path(directory)
    where = d / "schema.json"
    try:
        info = json.loads((d / MANIFEST).read_text(encoding="utf-8")).get("schema") or {}
        rel = info.get("path_from_dataset")
        if isinstance(rel, str) and (d / rel).is_file():
            where = d / rel
    except (OSError, ValueError, AttributeError):
        pass
    return schema_from_dict(raw, path=where)


# ---- what train and check-data see -------------------------------------------------------------

@dataclass
class Reviewed:
    """A dataset's pairs with the decisions applied."""

    pairs: dict[str, list[Pair]]
    replay: Replay
    stale: int  # decisions about pairs that are gone or changed since

    def state(self, p: Pair) -> PairState:
        return self.replay.state(p.key, p.sha)

    def counts(self) -> dict[str, int]:
        c = dict.fromkeys(("approved", "edited", "rejected", "unreviewed"), 0)
        for ps in self.pairs.values():
            for p in ps:
                c[self.state(p).status] += 1
        return c


def load_reviewed(directory: str | Path, splits: tuple[str, ...] = SPLITS, *, strict: bool = True) -> Reviewed:
    """Read the splits (those that exist; `train` must) and replay the decisions log over them."""
    d = Path(directory)
    pairs = {s: read_pairs(d, s, strict=strict) for s in splits if s == "train" or (d / f"{s}.jsonl").exists()}
    replay = replay_file(inside(d, DECISIONS))
    live = {(p.key, p.sha) for ps in pairs.values() for p in ps}
    stale = sum(1 for k, st in replay.states.items() if k not in live and st.version)
    return Reviewed(pairs, replay, stale)


def reviewed_splits(directory: str | Path, schema: dict[str, Any],
                    splits: tuple[str, ...] = ("train", "val")) -> tuple[dict[str, list[tuple[Messages, str]]],
                                                                         dict[str, Any]]:
    """What `train` trains on: each split's (prompt, answer) pairs, rejected ones left out, edits applied.

    Every edit is validated again (the log may have been written by hand): one that does not validate is
    a one-line error naming decisions.jsonl and its line. Returns the splits and a summary of the review.
    """
    d = Path(directory)
    rv = load_reviewed(d, splits)
    validator: Schema | None = None
    out: dict[str, list[tuple[Messages, str]]] = {}
    left_out = edited = 0
    for split, ps in rv.pairs.items():
        rows = []
        for p in ps:
            st = rv.state(p)
            if st.status == "rejected":
                left_out += 1
                continue
            answer = p.answer
            if st.answer is not None:
                validator = validator or dataset_schema(d, schema)
                compact, errors = check_answer(st.answer, validator)
                if compact is None:
                    raise SchemagenError(f"line {st.edit_line}: the edit of pair {p.key} does not validate: "
                                         f"{errors[0]['path'] or '/'}: {errors[0]['message']}", d / DECISIONS)
                answer, edited = compact, edited + 1
            rows.append((p.prompt, answer))
        out[split] = rows
    summary = {"decisions": rv.replay.decisions, "left_out_rejected": left_out, "edited_used": edited,
               "stale": rv.stale} if rv.replay.decisions else {}
    return {s: out.get(s, []) for s in splits}, summary


def review_note(summary: dict[str, Any]) -> str | None:
    """The line `train` prints about the review, or None when the dataset has none."""
    if not summary:
        return None
    return (f"review: {summary['decisions']} decisions; {summary['left_out_rejected']} rejected pairs left out, "
            f"{summary['edited_used']} edited answers used ({DECISIONS})")


def check_review(directory: Path, schema: Schema, report: FileReport) -> None:
    """check-data's part: the log is readable, every edit validates, stale decisions are named, and a bad
    record that review rejected or replaced is no longer a problem (it never trains as it is)."""
    log = directory / DECISIONS
    if not log.exists():
        return
    try:
        rv = load_reviewed(directory, strict=False)
    except SchemagenError as exc:
        report.add("error", "bad-decision", str(exc).removeprefix(f"{log}: "), path=str(log),
                   line=_line_of(str(exc)))
        return
    fixed: dict[tuple[str, int], str] = {}
    for split, ps in rv.pairs.items():
        for p in ps:
            st = rv.state(p)
            if st.answer is not None and st.status != "rejected":
                _, errors = check_answer(st.answer, schema)
                if errors:
                    report.add("error", "invalid-edit", f"the edit of pair {p.key} does not validate at "
                               f"{errors[0]['path'] or '/'}: {errors[0]['message']}", path=str(log),
                               line=st.edit_line)
                    continue
            if st.status in ("rejected", "edited"):
                fixed[(str(directory / f"{split}.jsonl"), p.line)] = st.status
    for issue in report.issues:
        why = fixed.get((issue.path, issue.line or 0))
        if why and issue.severity == "error" and issue.code in ("invalid-record", "answer-not-json"):
            issue.severity = "note"
            issue.message += (" (rejected in review: never trained)" if why == "rejected"
                              else " (replaced by a valid reviewed edit)")
    if rv.stale:
        report.add("warning", "stale-decision", f"{rv.stale} pairs decided in review are gone or changed since "
                   "(regenerated?): their decisions no longer apply", path=str(log))
    if rv.replay.conflicts:
        report.add("warning", "decision-conflict", f"{len(rv.replay.conflicts)} decisions ignored: made against "
                   f"an older version of their pair (first at line {rv.replay.conflicts[0]})", path=str(log),
                   line=rv.replay.conflicts[0])
    counts = rv.counts()
    report.info["review"] = {"decisions": rv.replay.decisions, **counts}
    report.add("note", "review", f"review: {counts['approved']} approved, {counts['edited']} edited, "
               f"{counts['rejected']} rejected, {counts['unreviewed']} unreviewed", path=str(log))


def _line_of(message: str) -> int | None:
    head = message.split("line ", 1)
    if len(head) == 2 and head[1].split(":", 1)[0].isdigit():
        return int(head[1].split(":", 1)[0])
    return None
