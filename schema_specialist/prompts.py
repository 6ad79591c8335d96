"""The one short prompt that train, eval and the router share, and the teacher's prompts."""

from __future__ import annotations

import json
from typing import Any

# The specialist's whole instruction: the schema itself lives in the adapter's weights.
TASK_SYSTEM = "Reply with the JSON only."


def task_messages(question: str) -> list[dict[str, str]]:
    """Messages for the specialist (train, eval and serve all use this)."""
    return [{"role": "system", "content": TASK_SYSTEM}, {"role": "user", "content": question}]


def schema_messages(question: str, schema: dict[str, Any]) -> list[dict[str, str]]:
    """The prompt-only baseline: the same question with the whole schema written into the prompt."""
    system = (f"{TASK_SYSTEM} The JSON must validate against this JSON Schema:\n"
              f"{json.dumps(schema, separators=(',', ':'))}")
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def pair_record(question: str, answer: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dataset line in the chat `messages` format that TRL, Unsloth and OpenAI fine-tuning read."""
    record: dict[str, Any] = {"messages": task_messages(question) + [{"role": "assistant", "content": answer}]}
    if meta:
        record["schemagen"] = meta
    return record


def _field_lines(schema: dict[str, Any], limit: int = 16) -> list[str]:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return []
    lines = []
    for key, sub in list(props.items())[:limit]:
        if not isinstance(sub, dict):
            continue
        hint = str(sub.get("description") or sub.get("title") or "")[:80]
        if isinstance(sub.get("enum"), list):
            hint += f" (one of: {', '.join(json.dumps(v) for v in sub['enum'][:8])})"
        lines.append(f"- {key}: {hint}".rstrip(": "))
    return lines


def _teacher_chat(system: str, schema: dict[str, Any], head: list[str], tail: str) -> list[dict[str, str]]:
    """A teacher prompt: `head`, the schema's fields with their hints, then `tail`."""
    fields = _field_lines(schema)
    parts = [*head, *(["Fields:\n" + "\n".join(fields)] if fields else []), tail]
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(parts)}]


def teacher_messages(schema: dict[str, Any], title: str, description: str, topic: str) -> list[dict[str, str]]:
    """Ask the teacher for one realistic instance; titles and descriptions steer its content."""
    head = [f"Write one realistic example of a {title} as JSON.", *([description.strip()] if description else [])]
    return _teacher_chat("You write realistic, varied example data as compact JSON.", schema, head,
                         f"Make it about {topic}. Use concrete, plausible values.")


def label_messages(schema: dict[str, Any], title: str, request: str) -> list[dict[str, str]]:
    """Ask the teacher for the JSON a user's own request describes (`generate --inputs`)."""
    head = [f"Turn this request into one {title} as JSON. Copy every value exactly as the request states it; "
            "leave out any optional field the request does not mention."]
    return _teacher_chat("You extract structured data from requests as compact JSON.", schema, head,
                         f"Request: {request}")


PARAPHRASE_SYSTEM = "You rewrite requests the way a person would type them. Reply with the rewritten request only."


def paraphrase_messages(request: str) -> list[dict[str, str]]:
    """Ask the teacher to rewrite a rendered request as a person would write it (`generate --paraphrase`);
    every value must survive verbatim, which `questions.missing_facts` checks afterwards."""
    return [{"role": "system", "content": PARAPHRASE_SYSTEM},
            {"role": "user", "content": "Rewrite this request as a person would write it: in your own words, "
             "in a different order if you like. Keep every value exactly as written: numbers, ids, dates, "
             "times, names and quoted text, character for character. Do not add, drop or change any value.\n\n"
             f"Request: {request}"}]
