"""The review's figures where people read them: the manifest's `review` section and the data card's lines.

Both are derived from `decisions.jsonl` (the only record of decisions) and rewritten atomically after each
decision; `generate` rewriting the manifest or the card drops nothing that the next decision or
`review_card_lines` does not bring back.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..dataset import MANIFEST, atomic_write_json, atomic_write_text
from .decisions import DECISIONS, Reviewed, load_reviewed

CARD = "card.md"
BEGIN, END = "<!-- schemagen:review -->", "<!-- /schemagen:review -->"


def review_section(directory: str | Path, reviewed: Reviewed | None = None) -> dict[str, Any] | None:
    """The manifest's `review` object: counts by status, decisions, reviewers, reasons; None when unreviewed.

    `reviewed` (pairs and replay a server already holds) saves reading the dataset again."""
    rv = reviewed or load_reviewed(directory, strict=False)
    if not rv.replay.decisions:
        return None
    reasons: Counter[str] = Counter()
    for ps in rv.pairs.values():
        for p in ps:
            st = rv.state(p)
            if st.status == "rejected" and st.reason:
                reasons[st.reason] += 1
    live = {(p.key, p.sha) for ps in rv.pairs.values() for p in ps}
    at = [st.at for k, st in rv.replay.states.items() if k in live and st.at]
    return {"log": DECISIONS, "decisions": rv.replay.decisions, **rv.counts(),
            "rejected_by_reason": dict(reasons.most_common()), "reviewers": dict(rv.replay.reviewers),
            "stale": rv.stale, "conflicts_ignored": len(rv.replay.conflicts), "updated": max(at) if at else None}


def write_manifest_review(directory: str | Path, section: dict[str, Any] | None) -> None:
    """Read-modify-write the manifest's `review` section atomically (other keys untouched)."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # no readable manifest: nothing to annotate (the log still holds every decision)
    if not isinstance(manifest, dict) or manifest.get("review") == section:
        return
    if section is None:
        manifest.pop("review", None)
    else:
        manifest["review"] = section
    atomic_write_json(path, manifest)


def review_card_lines(dataset_dir: str | Path) -> list[str]:
    """The data card's review block (markdown lines between markers); [] when the dataset is unreviewed.

    `generate`'s card writer can append these; `update_card` replaces the block in place after a decision.
    """
    return _card_block(review_section(dataset_dir))


def _card_block(s: dict[str, Any] | None) -> list[str]:
    if s is None:
        return []
    reasons = ", ".join(f"{r} {n}" for r, n in list(s["rejected_by_reason"].items())[:8]) or "none"
    who = ", ".join(f"{w} ({n})" for w, n in s["reviewers"].items())
    lines = [BEGIN, "## Review", "",
             "| approved | edited | rejected | unreviewed | decisions |", "|---|---|---|---|---|",
             f"| {s['approved']} | {s['edited']} | {s['rejected']} | {s['unreviewed']} | {s['decisions']} |", "",
             f"Rejected in review, by reason: {reasons}. Reviewers: {who}. Last decision: {s['updated']}.",
             f"Decisions live in `{DECISIONS}`; `schemagen train` leaves rejected pairs out and trains edited "
             "pairs on their edit."]
    if s["stale"]:
        lines.append(f"{s['stale']} older decisions are about pairs that changed since and no longer apply.")
    return [*lines, END]


def update_card(directory: str | Path, section: dict[str, Any] | None) -> None:
    """Put the review block into card.md: replace the marked block, else insert it before the sample pairs."""
    path = Path(directory) / CARD
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    block = _card_block(section)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + ("\n".join(block) + "\n\n" if block else "") + tail
    elif not block:
        return
    elif "\n## " in text:
        head, tail = text.split("\n## ", 1)
        new = head.rstrip("\n") + "\n\n" + "\n".join(block) + "\n\n## " + tail
    else:
        new = text.rstrip("\n") + "\n\n" + "\n".join(block) + "\n"
    if new != text:
        atomic_write_text(path, new)


def refresh(directory: str | Path, reviewed: Reviewed | None = None) -> None:
    """After a decision: the manifest's section and the card's block."""
    section = review_section(directory, reviewed)
    write_manifest_review(directory, section)
    update_card(directory, section)
