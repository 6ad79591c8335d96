"""Answers for the user's own requests (`generate --inputs FILE`): read, answer under the grammar, ground.

An inputs file holds one request a line (.txt), or JSONL (.jsonl) read by `evaluate.inputs.file_items`:
`{"question": ...}`, optionally with an `answer` (validated against the schema when the file is read,
then kept as it is) and a `style`. Any problem with a file (missing, empty, not UTF-8, a malformed line)
is one line naming the file and the line, raised before anything is written.

A request without an answer is answered by the teacher under the schema's grammar, with the request in
its prompt (`prompts.label_messages`); a local teacher grounds the grammar's free-text strings and numbers
in the request (`Teacher.label`, `grounding`), so they can only copy its words and numbers. The answer
must parse and validate against the original schema (simple violations repaired as for generated
instances), and be grounded: every string, number, boolean and empty list or object of it must be
stated in the request (`questions.missing_facts`, which accepts the prose spellings 48,210, $3.87, 40%,
"forty-five", "not resolved", an enum value in words). An answer that
is not is rejected with the paths it invented. A request is keyed by its text (`Item.key`), so a rerun
answers only the requests no earlier run has answered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..evaluate.inputs import Item, request_items
from ..schema import Schema
from .questions import missing_facts
from .repair import repair

SOURCE = "inputs"


def read_requests(paths: Sequence[str | Path], schema: Schema) -> list[Item]:
    """Every request of the files, in file and line order, the first of equal requests only."""
    seen: set[str] = set()
    items = []
    for path in paths:
        for item in request_items(path, schema, label=str(path)):
            if item.key not in seen:
                seen.add(item.key)
                items.append(item)
    return items


def judge_answer(text: str, request: str, schema: Schema) -> tuple[Any, bool, str | None]:
    """(value, repaired, None) for a valid, grounded answer to `request`; (None, repaired, reason) else."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, False, f"not JSON: {exc.msg} (truncated at max_new_tokens?)"
    repaired = False
    if not schema.is_valid(value):
        value, remaining = repair(value, schema)
        if remaining:
            return None, False, f"invalid: {remaining[0]}"
        repaired = True
    missing = missing_facts(request, value, schema)
    if missing:
        return None, repaired, f"not grounded: the request does not state {', '.join(missing[:3])}"
    return value, repaired, None


def file_summary(paths: Sequence[str | Path], items: Sequence[Item]) -> list[dict[str, Any]]:
    """What the manifest records of each inputs file: its path, sha256 and number of requests."""
    import hashlib

    out = []
    for p in paths:
        out.append({"path": str(p), "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest(),
                    "requests": sum(1 for i in items if i.source == str(p))})
    return out
