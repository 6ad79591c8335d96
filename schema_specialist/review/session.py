"""A dataset under review: its pairs, its schema, its decisions log, and the views the page asks for."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from ..dataset import REJECTED, SPLITS, load_manifest, read_jsonl
from ..errors import SchemagenError
from . import summary
from .decisions import (
    ACTIONS,
    MAX_WHO,
    BadDecision,
    DecisionLog,
    Pair,
    Reviewed,
    check_answer,
    dataset_schema,
    default_reviewer,
    inside,
    read_pairs,
)
from .stats import card_figures, histograms

logger = logging.getLogger(__name__)

MAX_REJECTED_SHOWN = 5000
STATUSES = ("unreviewed", "approved", "edited", "rejected")


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


class ReviewSession:
    """Everything the review server serves, read once; decisions go through the log (thread-safe)."""

    def __init__(self, directory: str | Path, *, reviewer: str | None = None) -> None:
        from ..training.data import check_schema

        d = Path(directory)
        if not d.is_dir():
            raise SchemagenError("no such dataset directory", d)
        self.directory = d
        self.manifest = load_manifest(d)
        raw, self.schema_sha256 = check_schema(d, self.manifest)
        self.schema_raw = raw
        self.schema = dataset_schema(d, raw)
        for name in [f"{s}.jsonl" for s in SPLITS] + [REJECTED]:
            inside(d, name)
        self.by_split = {s: read_pairs(d, s) for s in SPLITS if s == "train" or (d / f"{s}.jsonl").exists()}
        self.pairs: dict[str, Pair] = {}
        for ps in self.by_split.values():
            for p in ps:
                uid = p.key if p.key not in self.pairs else f"{p.split}:{p.line}"
                self.pairs[uid] = p
        self.uids = {id(p): uid for uid, p in self.pairs.items()}
        self._live = {(p.key, p.sha) for p in self.pairs.values()}
        self.rejected = self._read_rejected()
        self.log = DecisionLog(d)
        self.reviewer = " ".join((reviewer or default_reviewer()).split())[:MAX_WHO] or "unknown"
        self._lock = threading.Lock()

    def _read_rejected(self) -> list[dict[str, Any]]:
        path = self.directory / REJECTED
        if not path.exists():
            return []
        rows = []
        for _, rec in read_jsonl(path, strict=False):
            rows.append({"candidate": rec.get("candidate"), "reason": str(rec.get("reason", "unknown")),
                         "question": str(rec.get("question") or "")[:2000],
                         "output": str(rec.get("output") or "")[:2000]})
        return rows

    # ---- views ---------------------------------------------------------------------------------
    def _reviewed(self) -> Reviewed:
        stale = sum(1 for k, st in self.log.replay.states.items() if k not in self._live and st.version)
        return Reviewed(self.by_split, self.log.replay, stale)

    def view(self, uid: str) -> dict[str, Any]:
        p = self.pairs[uid]
        st = self.log.state(p.key, p.sha)
        answer = st.answer if st.answer is not None else p.answer
        system = next((m["content"] for m in p.prompt if m.get("role") == "system"), "")
        return {"id": uid, "split": p.split, "line": p.line, "source": p.source or "(none)",
                "candidate": p.meta.get("candidate"), "system": system, "question": p.question,
                "answer": answer, "answer_pretty": _pretty(answer), "original": p.answer,
                "original_pretty": _pretty(p.answer), "status": st.status, "reason": st.reason,
                "version": st.version, "who": st.who, "at": st.at, "seq": st.seq}

    def counts(self) -> dict[str, int]:
        return self._reviewed().counts()

    def state(self) -> dict[str, Any]:
        """The page's whole starting state (a few hundred KB for a few thousand pairs)."""
        with self._lock:
            self.log.refresh()
            views = [self.view(uid) for uid in self.pairs]
            reasons = sorted({v["reason"] for v in views if v["reason"]})
            return {"dataset": self.directory.resolve().name, "title": str(self.schema_raw.get("title") or ""),
                    "schema": self.schema_raw, "schema_sha256": self.schema_sha256, "reviewer": self.reviewer,
                    "splits": list(self.by_split), "sources": sorted({v["source"] for v in views}),
                    "statuses": list(STATUSES), "reasons": reasons, "counts": self.counts(),
                    "seq": self.log.replay.seq, "pairs": views, "figures": card_figures(self.manifest),
                    "rejected_count": len(self.rejected)}

    def stats(self) -> dict[str, Any]:
        """Histograms of what train would see: every split, rejected pairs left out, edits applied."""
        with self._lock:
            values = []
            for uid in self.pairs:
                v = self.view(uid)
                if v["status"] == "rejected":
                    continue
                try:
                    values.append(json.loads(v["answer"]))
                except ValueError:
                    continue
            return {"over": len(values), "histograms": histograms(self.schema_raw, values),
                    "counts": self.counts()}

    def changes(self, since: int) -> dict[str, Any]:
        """The pairs whose state changed after log sequence `since` (another tab, another server)."""
        with self._lock:
            self.log.refresh()
            views = [self.view(uid) for uid, p in self.pairs.items()
                     if self.log.state(p.key, p.sha).seq > since]
            return {"seq": self.log.replay.seq, "pairs": views, "counts": self.counts()}

    def rejected_view(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for r in self.rejected:
            k = r["reason"].split(":")[0]
            reasons[k] = reasons.get(k, 0) + 1
        return {"total": len(self.rejected), "reasons": reasons, "rows": self.rejected[:MAX_REJECTED_SHOWN]}

    def validate(self, text: Any) -> dict[str, Any]:
        compact, errors = check_answer(text, self.schema)
        return {"valid": compact is not None, "errors": errors, "answer": compact}

    def _summarize(self) -> None:
        """The manifest's and card's review figures; a failure there never undoes a saved decision."""
        try:
            summary.refresh(self.directory, self._reviewed())
        except OSError as exc:
            logger.warning("decision saved, but the manifest/card summary was not updated: %s", exc)

    # ---- the one write ---------------------------------------------------------------------------
    def decide(self, uid: str, action: str, base: int, *, answer: Any = None, reason: Any = None,
               who: Any = None) -> dict[str, Any]:
        """Record a decision (see decisions.py for the version rule). Raises KeyError, BadDecision, Conflict."""
        if uid not in self.pairs:
            raise KeyError(uid)
        if action not in ACTIONS:
            raise BadDecision(f"action must be one of {', '.join(ACTIONS)}")
        if action == "edit":
            compact, errors = check_answer(answer, self.schema)
            if compact is None:
                raise BadDecision("the edited answer does not validate against the schema: not saved", errors)
            answer = compact
        if reason is not None and not isinstance(reason, str):
            raise BadDecision("reason must be a string")
        p = self.pairs[uid]
        with self._lock:
            self.log.append(p.key, p.sha, action, base, answer=answer if action == "edit" else None,
                            reason=reason if action == "reject" else None,
                            who=who if isinstance(who, str) and who.strip() else self.reviewer,
                            then=lambda replay: self._summarize())
            return {"pair": self.view(uid), "counts": self.counts(), "seq": self.log.replay.seq}
