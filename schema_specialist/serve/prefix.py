"""A prompt prefix cache: the KV cache of prompts already prefilled, reused by later prompts that share a prefix.

Two kinds of request repeat most of their prompt. A request for a schema with no adapter carries the
whole schema in its system message, the same for every request of that schema; and a `strict` retry
is the very prompt its first attempt prefilled. Each prompt prefilled alone is stored here (keys and
values per layer, batch of one, no padding, and its last logits); a new prompt of the same adapter
takes the longest stored prefix and prefills only the rest. Keys and values at a position depend only
on the tokens up to it (causal attention, positions from 0), so a prefix's cache is the stored
prompt's cut at that length. Entries are dropped least recently used first, past `max_tokens`.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_PREFIX_TOKENS = 16384  # about 370 MiB of bf16 keys and values for SmolLM2-135M
MIN_PREFIX = 16  # shorter shared prefixes are not worth a lookup's bookkeeping


@dataclass
class Hit:
    """A stored prefix for a prompt: its length, per-layer (keys, values), and logits when it is the whole prompt."""

    length: int
    layers: list[tuple[Any, Any]]
    logits: Any = None  # [1, vocab] float32 after the prompt's last token; None unless length == len(prompt)


@dataclass
class _Entry:
    tokens: tuple[int, ...]
    layers: list[tuple[Any, Any]]  # [1, kv heads, len, dim] each
    logits: Any


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = min(len(a), len(b))
    if n == 0 or a[0] != b[0]:
        return 0
    lo, hi = 1, n  # a[:lo] == b[:lo]; find the largest such lo by halving on slice equality
    if tuple(a[:n]) == tuple(b[:n]):
        return n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if tuple(a[:mid]) == tuple(b[:mid]):
            lo = mid
        else:
            hi = mid
    return lo


class PrefixCache:
    """Stored prompt caches by adapter, bounded in tokens; `lookup` then `store` around each prefill."""

    def __init__(self, max_tokens: int = DEFAULT_PREFIX_TOKENS, min_prefix: int = MIN_PREFIX) -> None:
        self.max_tokens = max(0, max_tokens)
        self.min_prefix = max(1, min_prefix)
        self._entries: collections.OrderedDict[tuple[str, tuple[int, ...]], _Entry] = collections.OrderedDict()
        self._tokens = 0
        self._lock = threading.Lock()
        self.lookups = 0
        self.hits = 0
        self.tokens_reused = 0
        self.tokens_prefilled = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def tokens(self) -> int:
        """Tokens held (the sum of the stored prompts' lengths)."""
        return self._tokens

    def lookup(self, adapter: str, prompt: Sequence[int]) -> Hit | None:
        """The longest stored prefix of `prompt` for `adapter` (at least `min_prefix` tokens), or None."""
        if not self.max_tokens or not prompt:
            return None
        prompt_t = tuple(prompt)
        with self._lock:
            self.lookups += 1
            exact = self._entries.get((adapter, prompt_t))
            if exact is not None:
                self._entries.move_to_end((adapter, prompt_t))
                self.hits += 1
                self.tokens_reused += len(prompt_t)
                return Hit(len(prompt_t), exact.layers, exact.logits)
            best, best_len = None, 0
            for (name, _), entry in self._entries.items():
                if name != adapter:
                    continue
                n = common_prefix(entry.tokens, prompt_t)
                if n > best_len:
                    best, best_len = entry, n
            # The whole prompt as a proper prefix of a stored one has no logits stored: leave its last token.
            best_len = min(best_len, len(prompt_t) - 1)
            if best is None or best_len < self.min_prefix:
                self.tokens_prefilled += len(prompt_t)
                return None
            self._entries.move_to_end((adapter, best.tokens))
            self.hits += 1
            self.tokens_reused += best_len
            self.tokens_prefilled += len(prompt_t) - best_len
            return Hit(best_len, [(k[:, :, :best_len], v[:, :, :best_len]) for k, v in best.layers])

    def store(self, adapter: str, prompt: Sequence[int], layers: list[tuple[Any, Any]], logits: Any) -> None:
        """Keep `prompt`'s cache (per-layer keys and values, batch of one, unpadded) and its last logits."""
        prompt_t = tuple(prompt)
        if not self.max_tokens or len(prompt_t) < self.min_prefix or len(prompt_t) > self.max_tokens:
            return
        key = (adapter, prompt_t)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return
            # Copies: the running batch's cache grows by concatenation, but nothing here may alias it.
            kept = [(k.detach().clone(), v.detach().clone()) for k, v in layers]
            self._entries[key] = _Entry(prompt_t, kept, logits.detach().clone())
            self._tokens += len(prompt_t)
            while self._tokens > self.max_tokens and self._entries:
                _, old = self._entries.popitem(last=False)
                self._tokens -= len(old.tokens)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._tokens = 0

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "tokens": self._tokens, "max_tokens": self.max_tokens,
                "lookups": self.lookups, "hits": self.hits, "tokens_reused": self.tokens_reused,
                "tokens_prefilled": self.tokens_prefilled}
