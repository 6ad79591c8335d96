"""Check the hand-written test requests (`*.requests.jsonl`) against the schema next to each file.

For every `<name>.requests.jsonl` under `schemas/` and `tests/data/unseen/`:
each line is a JSON object with a non-empty string `question`, an `answer` that validates against
`<name>.json` (its own draft, with `FormatChecker`), and a string `style`; no question appears twice.
Answers are also checked against a strict copy of the schema (objects that declare `properties` but
say nothing about extra keys are closed), so a misspelt key in a gold answer is caught even where the
schema itself would let it through. Prints, per file, the count, the style tags and the mean question
length in words. Exits 1 on any problem, naming file and line.

    python scripts/check_requests.py
"""
from __future__ import annotations

import copy
import json
import sys
from collections import Counter
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = [ROOT / "schemas", ROOT / "tests" / "data" / "unseen"]


def closed(schema):
    """A copy in which every object schema with `properties` and no word on extra keys forbids them."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (isinstance(node.get("properties"), dict) and "additionalProperties" not in node
                    and "patternProperties" not in node):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def check_file(path: Path) -> list[str]:
    problems = []
    schema_path = path.with_name(path.name[: -len(".requests.jsonl")] + ".json")
    if not schema_path.exists():
        return [f"{path}: no schema {schema_path.name} next to it"]
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    strict = cls(closed(schema), format_checker=cls.FORMAT_CHECKER)
    seen: dict[str, int] = {}
    styles: Counter = Counter()
    words = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.relative_to(ROOT)}:{n}"
        if not line.strip():
            problems.append(f"{where}: empty line")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{where}: not JSON ({e})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        extra = set(row) - {"question", "answer", "style"}
        if extra:
            problems.append(f"{where}: unexpected keys {sorted(extra)}")
        q = row.get("question")
        if not isinstance(q, str) or not q.strip():
            problems.append(f"{where}: question missing or empty")
            continue
        key = " ".join(q.split()).lower()
        if key in seen:
            problems.append(f"{where}: duplicate of line {seen[key]}")
        seen.setdefault(key, n)
        words.append(len(q.split()))
        style = row.get("style")
        if not isinstance(style, str) or not style.strip():
            problems.append(f"{where}: style missing or empty")
        else:
            styles[style] += 1
        if "answer" not in row:
            problems.append(f"{where}: no answer")
            continue
        found = set()
        for err in validator.iter_errors(row["answer"]):
            found.add((tuple(err.absolute_path), err.message))
            problems.append(f"{where}: answer invalid at /{'/'.join(map(str, err.absolute_path))}: {err.message}")
        for err in strict.iter_errors(row["answer"]):
            if err.validator == "additionalProperties" and (tuple(err.absolute_path), err.message) not in found:
                problems.append(f"{where}: answer has a key the schema does not declare at "
                                f"/{'/'.join(map(str, err.absolute_path))}: {err.message}")
    mean = sum(words) / len(words) if words else 0.0
    tags = ", ".join(f"{s} {c}" for s, c in sorted(styles.items(), key=lambda kv: (-kv[1], kv[0])))
    print(f"{path.relative_to(ROOT)}: {len(words)} requests, mean {mean:.1f} words; styles: {tags}")
    return problems


def main() -> int:
    files = sorted(p for folder in FOLDERS if folder.is_dir() for p in folder.glob("*.requests.jsonl"))
    if not files:
        print("no *.requests.jsonl files found", file=sys.stderr)
        return 1
    problems = []
    for path in files:
        problems += check_file(path)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(files)} files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
