"""Evaluation inputs: the held-out split, property-based (hypothesis) instances, the user's own request
files (`--inputs FILE.jsonl`), subsets."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from ..schema import Schema


@dataclass
class Item:
    """One evaluation input: a question and the gold JSON value its answer must equal."""

    question: str
    gold: Any
    source: str  # "test", "hypothesis", or the label of an `--inputs` file
    has_gold: bool = True  # False: a request without an answer (validity only)
    style: str | None = None  # how the question is written, when its source says so

    @property
    def key(self) -> str:
        """The input's id in the answer log: a system's answer depends on the question alone."""
        return hashlib.sha256(self.question.encode("utf-8")).hexdigest()[:20]


@dataclass
class Generation:
    """One system's raw answer to one item."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated: bool = False
    seconds: float = 0.0


# A generator answers a batch of items; evaluate() calls it with successive batches.
Generator = Callable[[Sequence[Item]], list[Generation]]


def unique_items(items: Sequence[Item]) -> list[Item]:
    """`items` without repeats of one input id (`Item.key`), first kept, in order."""
    seen: dict[str, Item] = {}
    for it in items:
        seen.setdefault(it.key, it)
    return list(seen.values())


@contextlib.contextmanager
def _no_local_constants() -> Iterator[None]:
    """Hypothesis (6.131 and later) mixes the string and number literals of every loaded local module into
    what it draws, so one seed gave other inputs from the CLI, a script or a test, and after any code
    change. Off for eval's draws: the inputs are a function of the schema, the seed and the version."""
    try:
        from hypothesis.internal.conjecture import providers

        empty = providers.Constants()
        saved = providers._get_local_constants
        cache = providers.CONSTANTS_CACHE
    except (ImportError, AttributeError):  # another hypothesis: nothing to turn off
        yield
        return
    cache.cache.clear()
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = saved
        cache.cache.clear()


def hypothesis_instances(schema: Schema, count: int, seed: int, *, realistic: bool = True) -> list[Any]:
    """`count` distinct schema instances, reproducible for a given seed (raises on unsupported schemas)."""
    if count <= 0:
        return []
    with _no_local_constants():
        return _draw(schema, count, seed, realistic)


def _draw(schema: Schema, count: int, seed: int, realistic: bool) -> list[Any]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    from ..schema import canonical_json
    from ..testing import instances

    strategy = instances(schema, realistic=realistic)
    found: dict[str, Any] = {}
    for attempt in range(4):
        drawn: list[Any] = []

        @hseed(seed * 7919 + attempt)
        @settings(database=None, max_examples=max(20, 2 * count + 10), deadline=None, derandomize=False,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        @given(strategy)
        def collect(value: Any) -> None:
            drawn.append(value)  # noqa: B023  (runs before the next loop turn rebinds it)

        collect()
        for value in drawn:
            found.setdefault(canonical_json(value), value)
        if len(found) >= count:
            break
    return list(found.values())[:count]


def cached_instances(schema: Schema, count: int, seed: int, *, realistic: bool = True,
                     cache: Path | None = None) -> list[Any]:
    """`hypothesis_instances`, kept in `cache` (a JSON file) for the next run with the same key.

    Drawing costs about 50 ms an instance (2.5 min for n=3000); a resumed eval should not pay it again.
    """
    if cache is None:
        return hypothesis_instances(schema, count, seed, realistic=realistic)
    import hypothesis

    key = {"schema_sha256": schema.sha256, "count": count, "seed": seed, "realistic": realistic,
           "hypothesis": hypothesis.__version__, "local_constants": False}
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if isinstance(saved, dict) and saved.get("key") == key and isinstance(saved.get("instances"), list):
            return saved["instances"]
    except (OSError, ValueError):
        pass
    values = hypothesis_instances(schema, count, seed, realistic=realistic)
    from ..dataset import atomic_write_json

    with contextlib.suppress(OSError):  # a cache only
        atomic_write_json(cache, {"key": key, "instances": values})
    return values


def hypothesis_items(schema: Schema, count: int, seed: int, *, realistic: bool = True,
                     shuffle: float = 0.0, cache: Path | None = None) -> list[Item]:
    """Property-based items: instances rendered as faithful questions (seeded, reproducible), with the
    field order the dataset's questions used (`shuffle`, from its manifest)."""
    from ..generate.questions import missing_facts, render_question

    items = []
    for i, value in enumerate(cached_instances(schema, count, seed, realistic=realistic, cache=cache)):
        question = render_question(value, schema, random.Random(seed * 1_000_003 + i), shuffle)
        if not missing_facts(question, value, schema):
            items.append(Item(question, value, "hypothesis"))
    return items


def test_items(dataset: Path) -> list[Item]:
    """The held-out test split as items (question = the last user turn; style from its `schemagen` record).

    A reviewer's decisions (`decisions.jsonl`, `schemagen review`) are honoured as `train` honours them:
    a rejected test pair is not scored, and an edited answer is the gold one.
    """
    from ..dataset import pair_of, read_jsonl
    from ..review.decisions import DECISIONS, load_reviewed

    path = dataset / "test.jsonl"
    if not path.exists():
        raise SchemagenError("no held-out test split (test.jsonl)", dataset)
    review = {}
    if (dataset / DECISIONS).exists():
        rv = load_reviewed(dataset, ("test",))
        review = {p.line: rv.state(p) for p in rv.pairs.get("test", [])}
    items = []
    for lineno, record in read_jsonl(path):
        messages, answer = pair_of(record, path, lineno)
        user = [m["content"] for m in messages if m.get("role") == "user"]
        state = review.get(lineno)
        if state is not None and state.status == "rejected":
            continue
        if state is not None and state.answer is not None:
            answer = state.answer
        try:
            gold = json.loads(answer)
        except ValueError:
            raise SchemagenError(f"line {lineno}: the answer is not valid JSON", path) from None
        meta = record.get("schemagen")
        items.append(Item(user[-1] if user else messages[-1]["content"], gold, "test",
                          style=_style(meta) if isinstance(meta, dict) else None))
    return items


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a request file; a missing file or bytes that are not
    UTF-8 are a one-line error naming the file (and the line)."""
    p = Path(path)
    if not p.is_file():
        raise SchemagenError("no such inputs file" if not p.exists() else "not a file", p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SchemagenError(f"cannot read: {exc.strerror or exc}", p) from None
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a UTF-8 byte order mark
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SchemagenError(f"line {lineno}: not UTF-8 (byte {exc.start + 1})", p) from None
        if line.strip():
            yield lineno, line


def _style(record: dict[str, Any]) -> str | None:
    style = record.get("style")
    return str(style) if isinstance(style, str | int) and style != "" else None


def file_items(path: str | Path, schema: Schema, label: str | None = None) -> list[Item]:
    """The requests of an `--inputs` JSONL file: `{"question": str, "answer": value?, "style": str?, ...}`.

    Other keys are allowed and ignored. An answer must validate against the schema; a line without one
    is scored for validity only. Any problem is a one-line error naming the file and the line.
    """
    p = Path(path)
    name = label or p.stem
    items: list[Item] = []
    for lineno, line in _lines(p):
        try:
            record = json.loads(line)
        except ValueError as exc:
            msg = getattr(exc, "msg", str(exc))
            raise SchemagenError(f"line {lineno}: not valid JSON ({msg})", p) from None
        if not isinstance(record, dict):
            raise SchemagenError(f"line {lineno}: a line must be a JSON object with a `question`", p)
        question = record.get("question")
        if not isinstance(question, str) or not question.strip():
            raise SchemagenError(f"line {lineno}: no `question` string", p)
        has_gold = "answer" in record
        gold = record.get("answer")
        if has_gold:
            errors = schema.errors(gold)
            if errors:
                import jsonschema

                best = jsonschema.exceptions.best_match(errors)
                where = "/" + "/".join(str(x) for x in best.absolute_path) if best.absolute_path else "(root)"
                raise SchemagenError(f"line {lineno}: `answer` is not valid for the schema ({where}: "
                                     f"{' '.join(str(best.message).split())[:160]})", p)
        items.append(Item(question, gold, name, has_gold, _style(record)))
    if not items:
        raise SchemagenError("empty: no requests in this inputs file", p)
    return items


def text_items(path: str | Path, label: str | None = None) -> list[Item]:
    """The requests of a plain-text inputs file, one a line (no answers); problems as in `file_items`."""
    p = Path(path)
    items = [Item(line.strip(), None, label or p.stem, has_gold=False) for _, line in _lines(p)]
    if not items:
        raise SchemagenError("empty: no requests in this inputs file", p)
    return items


JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def request_items(path: str | Path, schema: Schema, label: str | None = None) -> list[Item]:
    """`file_items` for a JSONL file (.jsonl, .ndjson, .json), `text_items` for any other (.txt)."""
    if Path(path).suffix.lower() in JSONL_SUFFIXES:
        return file_items(path, schema, label)
    return text_items(path, label)


def file_labels(paths: Sequence[str | Path]) -> list[str]:
    """A short label for each `--inputs` file: its stem, or its path where two stems clash."""
    stems = [Path(x).stem for x in paths]
    return [s if stems.count(s) == 1 and s not in ("test", "hypothesis", "main") else str(x)
            for s, x in zip(stems, paths, strict=True)]



def subset(items: Sequence[Item], k: int) -> list[Item]:
    """k items spread evenly over `items` (keeps the held-out/hypothesis mix)."""
    n = len(items)
    if k >= n:
        return list(items)
    return [items[(i * n) // k] for i in range(k)]


def select_inputs(schema: Schema, dataset: Path, n: int, seed: int, hypothesis_share: float | None,
                  realistic: bool = True, cache: Path | None = None) -> tuple[list[Item], dict[str, int], list[str]]:
    """Held-out items first, hypothesis items for the rest (or `hypothesis_share` of n); `cache` keeps the
    drawn hypothesis instances for a rerun."""
    notes: list[str] = []
    held = test_items(dataset)
    if hypothesis_share is None:
        n_test = min(n, len(held))
    else:
        n_test = min(len(held), n - round(n * hypothesis_share))
    n_hyp = n - n_test
    hyp: list[Item] = []
    if n_hyp > 0:
        try:
            from ..dataset import load_manifest

            settings = load_manifest(dataset).get("settings") or {}
            shuffle = float(settings.get("shuffle_fields") or 0.0) if isinstance(settings, dict) else 0.0
            hyp = hypothesis_items(schema, n_hyp, seed, realistic=realistic, shuffle=shuffle, cache=cache)
        except Exception as exc:  # hypothesis-jsonschema raises many types for schemas it cannot handle
            why = " ".join(str(exc).split())[:160] or type(exc).__name__
            notes.append(f"hypothesis-jsonschema cannot generate instances of this schema ({why}): "
                         f"held-out inputs only")
            hyp = []
        if len(hyp) < n_hyp and hyp:
            notes.append(f"hypothesis produced {len(hyp)} distinct faithful instances of the {n_hyp} asked")
        if not hyp and not notes:
            notes.append("hypothesis produced no instances of this schema: held-out inputs only")
    if not hyp:
        n_test = min(n, len(held))
    items = held[:n_test] + hyp
    if len(items) < n:
        notes.append(f"only {len(items)} inputs available of the {n} asked (test split has {len(held)})")
    counts = {"test": n_test, "hypothesis": len(hyp)}
    return items, counts, notes


