"""Paraphrase by the teacher (`generate --paraphrase SHARE`): template, then paraphrase, then filter.

A share of the rendered (template) questions is sent to the teacher, which rewrites each freely, with no
grammar, as a person would write it (`prompts.paraphrase_messages`). A rewrite replaces the template
question only when it passes the same round trip as every question (`questions.missing_facts`: each
value of the answer still stated) and is not empty, too long or the template again; otherwise the
template question is kept and the rewrite's reason recorded. The pair's meta says which (`source`
"paraphrase" or "template", and `paraphrase`: the template of a kept rewrite, or the reason and the
rewrite of a refused one), so the manifest's counts are rebuilt from the files on a resumed run.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

from ..schema import Schema
from .questions import missing_facts

SOURCE = "paraphrase"
TEMPERATURE = 0.7  # some freedom of wording; the filter refuses what drifts
OPENAI_SHARE = 0.25  # the default share for an HTTP teacher; 0 for a local one (the 135M model writes poorly)
MAX_GROWTH = 2.0  # a rewrite longer than this many times the template (plus a sentence) is refused
_PREAMBLE = re.compile(r"^\s*(?:here is|here's|sure|rewritten|rewrite|paraphrase|request)[^\n:]{0,40}:\s*",
                       re.IGNORECASE)
_QUOTES = ('"', "'", "\u201c", "\u201d", "`")


def default_share(teacher: str) -> float:
    """--paraphrase when not given: OPENAI_SHARE for `openai:...`, 0 for a local teacher."""
    return OPENAI_SHARE if teacher.startswith("openai:") else 0.0


def chosen(seed: int, candidate: int, share: float) -> bool:
    """Whether a candidate's question is sent for a rewrite (fixed by seed and candidate, so reruns agree)."""
    return share > 0 and random.Random(f"{seed}:{candidate}:p").random() < share


def clean(text: str) -> str:
    """The rewrite without a preamble ("Here is the rewritten request:") or quotes around it."""
    text = text.strip()
    for _ in range(3):  # "Rewrite the request to:\nRewrite request: ..."
        text = _PREAMBLE.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _same(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", s.lower()).split())

    return norm(a) == norm(b)


def judge_rewrite(rewrite: str | None, template: str, instance: Any, schema: Schema) -> tuple[str | None, str]:
    """(the rewrite, "") when it may replace `template`; (None, reason) when the template stays."""
    if rewrite is None:
        return None, "teacher cannot paraphrase"
    text = clean(rewrite)
    if not text:
        return None, "empty"
    if len(text) > MAX_GROWTH * len(template) + 80:
        return None, f"too long: {len(text)} characters for a template of {len(template)}"
    if _same(text, template):
        return None, "identical to the template"
    missing = missing_facts(text, instance, schema)
    if missing:
        return None, f"not faithful: the rewrite does not state {', '.join(missing[:3])}"
    return text, ""


def apply(ok: dict[str, Any], rewrite: str | None, schema: Schema) -> None:
    """Put a judged rewrite on an accepted record: the new question and its source, or the reason."""
    kept, reason = judge_rewrite(rewrite, ok["question"], ok["value"], schema)
    if kept is not None:
        ok["paraphrase"] = {"kept": True, "template": ok["question"]}
        ok["question"], ok["source"] = kept, SOURCE
    else:
        ok["paraphrase"] = {"kept": False, "reason": reason, "rewrite": (rewrite or "")[:1000]}


def count(info: Any, counts: Counter[str], reasons: Counter[str], pair_kept: bool = True) -> None:
    """Book one asked rewrite (a pair's `paraphrase` meta); a kept rewrite whose pair was rejected
    afterwards (a near-duplicate question) counts as refused with that reason."""
    if not isinstance(info, dict):
        return
    counts["asked"] += 1
    if info.get("kept") and pair_kept:
        counts["kept"] += 1
    else:
        reasons["pair rejected" if info.get("kept") else str(info.get("reason", "unknown")).split(":")[0]] += 1


def section(share: float, counts: Counter[str], reasons: Counter[str]) -> dict[str, Any]:
    """The manifest's `paraphrase` section."""
    asked = counts["asked"]
    return {"share": share, "asked": asked, "kept": counts["kept"], "rejected": asked - counts["kept"],
            "kept_rate": round(counts["kept"] / asked, 4) if asked else None,
            "rejected_by_reason": dict(reasons),
            "filter": "every value of the answer is stated in the rewrite (the round trip), not empty, "
                      f"not over {MAX_GROWTH:g}x the template, not the template again"}
