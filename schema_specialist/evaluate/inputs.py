"""Evaluation inputs: the held-out split, property-based (hypothesis) instances, subsets."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
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
    source: str  # "test" or "hypothesis"


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


def hypothesis_instances(schema: Schema, count: int, seed: int, *, realistic: bool = True) -> list[Any]:
    """`count` distinct schema instances, reproducible for a given seed (raises on unsupported schemas)."""
    if count <= 0:
        return []
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


def hypothesis_items(schema: Schema, count: int, seed: int, *, realistic: bool = True,
                     shuffle: float = 0.0) -> list[Item]:
    """Property-based items: instances rendered as faithful questions (seeded, reproducible), with the
    field order the dataset's questions used (`shuffle`, from its manifest)."""
    from ..generate.questions import missing_facts, render_question

    items = []
    for i, value in enumerate(hypothesis_instances(schema, count, seed, realistic=realistic)):
        question = render_question(value, schema, random.Random(seed * 1_000_003 + i), shuffle)
        if not missing_facts(question, value, schema):
            items.append(Item(question, value, "hypothesis"))
    return items


def test_items(dataset: Path) -> list[Item]:
    """The held-out test split as items (question = the last user turn)."""
    from ..dataset import load_split

    path = dataset / "test.jsonl"
    if not path.exists():
        raise SchemagenError("no held-out test split (test.jsonl)", dataset)
    items = []
    for messages, answer in load_split(dataset, "test"):
        user = [m["content"] for m in messages if m.get("role") == "user"]
        try:
            gold = json.loads(answer)
        except ValueError:
            raise SchemagenError("a test answer is not valid JSON", path) from None
        items.append(Item(user[-1] if user else messages[-1]["content"], gold, "test"))
    return items



def subset(items: Sequence[Item], k: int) -> list[Item]:
    """k items spread evenly over `items` (keeps the held-out/hypothesis mix)."""
    n = len(items)
    if k >= n:
        return list(items)
    return [items[(i * n) // k] for i in range(k)]


def select_inputs(schema: Schema, dataset: Path, n: int, seed: int, hypothesis_share: float | None,
                  realistic: bool = True) -> tuple[list[Item], dict[str, int], list[str]]:
    """Held-out items first, hypothesis items for the rest (or `hypothesis_share` of n)."""
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
            hyp = hypothesis_items(schema, n_hyp, seed, realistic=realistic, shuffle=shuffle)
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


