"""Exact and near-duplicate detection (MinHash over word 3-grams) and diversity figures."""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from typing import Any

from .questions import leaves

_WORD = re.compile(r"\w+")


def normalize(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, k: int = 3) -> set[str]:
    words = normalize(text).split()
    if len(words) < k:
        return {" ".join(words)}
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


class NearDuplicates:
    """Finds texts whose word-3-gram Jaccard similarity with an earlier one reaches `threshold`."""

    def __init__(self, threshold: float = 0.9, num_perm: int = 32, bands: int = 16) -> None:
        self.threshold, self.num_perm, self.rows = threshold, num_perm, num_perm // bands
        self.buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
        self.sets: list[set[str]] = []
        self.exact: set[str] = set()

    def _signature(self, sh: set[str]) -> list[int]:
        return [min(zlib.crc32(f"{i}:{s}".encode()) for s in sh) for i in range(self.num_perm)]

    def check(self, text: str) -> str | None:
        """None if new, else the reason it is a duplicate; new texts are remembered."""
        norm = normalize(text)
        if norm in self.exact:
            return "duplicate question"
        sh = shingles(text)
        sig = self._signature(sh)
        keys = [(b, tuple(sig[b * self.rows:(b + 1) * self.rows])) for b in range(self.num_perm // self.rows)]
        for key in keys:
            for idx in self.buckets.get(key, ()):
                other = self.sets[idx]
                if len(sh & other) / max(1, len(sh | other)) >= self.threshold:
                    return "near-duplicate question"
        self.exact.add(norm)
        self.sets.append(sh)
        for key in keys:
            self.buckets[key].append(len(self.sets) - 1)
        return None


class Diversity:
    """Distinct values per field and distinct n-grams of the questions."""

    def __init__(self) -> None:
        self.values: dict[str, set[str]] = defaultdict(set)
        self.counts: dict[str, int] = defaultdict(int)
        self.unigrams: set[str] = set()
        self.bigrams: set[str] = set()
        self.tokens = 0

    def add(self, question: str, instance: Any) -> None:
        for path, value in leaves(instance):
            field = re.sub(r"/\d+(?=/|$)", "/*", path)
            self.values[field].add(repr(value))
            self.counts[field] += 1
        words = normalize(question).split()
        self.tokens += len(words)
        self.unigrams.update(words)
        self.bigrams.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))

    def summary(self) -> dict[str, Any]:
        fields = {f: {"distinct": len(v), "seen": self.counts[f], "ratio": round(len(v) / self.counts[f], 3)}
                  for f, v in sorted(self.values.items())}
        ratios = [x["ratio"] for x in fields.values()]
        return {
            "distinct_1": round(len(self.unigrams) / max(1, self.tokens), 4),
            "distinct_2": round(len(self.bigrams) / max(1, self.tokens), 4),
            "mean_field_distinct_ratio": round(sum(ratios) / len(ratios), 3) if ratios else 0.0,
            "fields": fields,
        }
