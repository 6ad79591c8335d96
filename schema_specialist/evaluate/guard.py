"""The decoding-time guard, measured: the adapter answers freely; an invalid answer is retried under the
schema's grammar with the adapter on (what `Router.answer(strict=True)` does).

For each input source: how often the free answer is invalid, how often the retry fixes it, the validity
and field accuracy of the guarded answers, and what the retries cost: seconds and tokens per retried
answer (the retry prefills the prompt again), and the mean added to every request.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .metrics import Rate
from .scoring import Scored


@dataclass
class Guard:
    """The guard over one input source."""

    n: int
    invalid: Rate  # free answers that are invalid, of n
    fixed: Rate  # retries that validate, of the invalid ones
    validity: Rate  # guarded answers that validate, of n
    fields: Rate  # gold leaves right in the guarded answers
    retry_seconds: float  # mean per retried answer
    retry_prompt_tokens: float
    retry_completion_tokens: float
    added_seconds_per_request: float  # retry seconds over all n requests
    added_tokens_per_request: float  # retry prompt + completion tokens over all n requests
    free_seconds: float  # mean seconds of a free answer, for scale

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "invalid": self.invalid.to_dict(), "fixed": self.fixed.to_dict(),
                "validity": self.validity.to_dict(), "fields": self.fields.to_dict(),
                "retry_seconds_mean": self.retry_seconds, "retry_prompt_tokens_mean": self.retry_prompt_tokens,
                "retry_completion_tokens_mean": self.retry_completion_tokens,
                "added_seconds_per_request": self.added_seconds_per_request,
                "added_tokens_per_request": self.added_tokens_per_request,
                "free_seconds_mean": self.free_seconds}

    def text(self) -> str:
        k, n = self.invalid.k, self.n
        head = f"guard (free answer, constrained retry when invalid): {k}/{n} free answers invalid"
        if not k:
            return head + "; no retry needed"
        return (f"{head}, the retry fixed {self.fixed.k}/{k}; guarded validity {self.validity.text()}; "
                f"a retry costs {self.retry_seconds:.3f} s and {self.retry_prompt_tokens:.0f} prompt + "
                f"{self.retry_completion_tokens:.0f} answer tokens; on average the guard adds "
                f"{self.added_seconds_per_request:.4f} s and {self.added_tokens_per_request:.1f} tokens a request")


def measure(free: Sequence[Scored], retries: dict[str, Scored]) -> Guard:
    """The guard from the free answers and the retries (by input key) of those that were invalid."""
    n = len(free)
    bad = [s for s in free if not s.valid]
    redo = [retries[s.item.key] for s in bad if s.item.key in retries]
    if len(redo) != len(bad):
        raise ValueError(f"{len(bad) - len(redo)} invalid answers have no retry")
    guarded = [retries[s.item.key] if not s.valid else s for s in free]
    mean = statistics.fmean
    seconds = [r.gen.seconds for r in redo]
    tokens = [r.gen.prompt_tokens + r.gen.completion_tokens for r in redo]
    return Guard(
        n=n, invalid=Rate(len(bad), n), fixed=Rate(sum(r.valid for r in redo), len(redo)),
        validity=Rate(sum(s.valid for s in guarded), n),
        fields=Rate(sum(s.fields[0] for s in guarded), sum(s.fields[1] for s in guarded)),
        retry_seconds=mean(seconds) if redo else 0.0,
        retry_prompt_tokens=mean([r.gen.prompt_tokens for r in redo]) if redo else 0.0,
        retry_completion_tokens=mean([r.gen.completion_tokens for r in redo]) if redo else 0.0,
        added_seconds_per_request=sum(seconds) / n if n else 0.0,
        added_tokens_per_request=sum(tokens) / n if n else 0.0,
        free_seconds=mean([s.gen.seconds for s in free]) if n else 0.0)
