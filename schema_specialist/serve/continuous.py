"""Continuous batching for the server: rows join between decoding steps and leave when they end.

Each row has its own adapter (PEFT's per-row `adapter_names`), grammar and sampling settings; a
joining row is prefilled, then its cache is left-padded into the running one. With a `PrefixCache`
each joining row is prefilled alone, from the longest stored prefix of its prompt (a schema prompt's
system message, a strict retry's whole prompt); without one, the joining rows are prefilled together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..generate.decoding import (
    Decoded,
    RowConstraint,
    apply_bitmask,
    bitmask_words,
    cache_kwarg,
    choose_token,
    fold_output_head,
)
from .kvcache import in_place_layers, joinable, new_cache
from .prefix import PrefixCache

BASE_ADAPTER = "__base__"  # PEFT's per-row name for "no adapter"


@dataclass
class Row:
    """One row for `ContinuousBatch`: a prompt (token ids) and how to decode it."""

    prompt: Sequence[int]
    max_new_tokens: int
    key: Any = None  # the caller's handle, given back in events
    adapter: str = BASE_ADAPTER  # PEFT adapter name for this row (`adapter_names`), or BASE_ADAPTER
    constraint: RowConstraint | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0


@dataclass
class RowEvent:
    """What one step did to one row: the token it appended (if any) and, when it ended, its result."""

    key: Any
    token: int | None
    done: Decoded | None = None


# A prefilled part: (cache, mask [rows, width], next positions [rows, 1], last logits [rows, vocab]).
Prefilled = tuple[Any, Any, Any, Any]


@dataclass
class _Live:
    row: Row
    tokens: list[int]
    generator: Any
    started: float


class ContinuousBatch:
    """A running batch that rows join (`add`) and leave (`step`, `drop`) between decoding steps.

    Every row has its own adapter (PEFT's per-row `adapter_names`), grammar, sampling settings and
    seeded generator, so a row's tokens do not depend on which other rows share its batch. The KV
    cache is one `DynamicCache`: a joining group is prefilled on its own, then both caches are
    left-padded to one width and concatenated; columns that only padding still uses are trimmed.
    """

    def __init__(self, model: Any, *, stop_ids: set[int] | frozenset[int], pad_id: int,
                 vocab_size: int | None = None, adapter_names: bool | None = None,
                 forward: Callable[..., Any] | None = None, prefix_cache: PrefixCache | None = None,
                 grow_cache: bool = False) -> None:
        self.model = model
        self.prefix_cache = prefix_cache
        self.grow_cache = grow_cache  # `kvcache.GrowingLayer`s: only for a model on `attention.decode_attention`
        self.stop_ids = frozenset(stop_ids)
        self.pad_id = pad_id
        self.vocab_size = vocab_size
        # PEFT models take `adapter_names`; a bare model ignores the rows' adapters.
        self.adapter_names = hasattr(model, "peft_config") if adapter_names is None else adapter_names
        self._forward = forward
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._key = cache_kwarg(base)
        fold_output_head(model)
        self.live: list[_Live] = []
        self._cache: Any = None
        self._mask: Any = None  # [rows, width] 1 = real token
        self._pos: Any = None  # [rows, 1] position of each row's next token
        self._logits: Any = None  # [rows, vocab] float32: each row's next-token logits

    def __len__(self) -> int:
        return len(self.live)

    @property
    def keys(self) -> list[Any]:
        return [lv.row.key for lv in self.live]

    @property
    def width(self) -> int:
        """Columns of the KV cache (the longest row, padding included)."""
        return 0 if self._mask is None else int(self._mask.shape[1])

    def forward(self, names: list[str], **kwargs: Any) -> Any:
        """One forward pass; `names` are the rows' adapters (`adapter_names` for a PEFT model)."""
        if self._forward is not None:
            return self._forward(names, **kwargs)
        if self.adapter_names:
            kwargs["adapter_names"] = names
        return self.model(**kwargs)

    def add(self, rows: Sequence[Row]) -> None:
        """Prefill `rows` (together, or each from the prefix cache) and join them to the running batch (their
        first token comes at `step`)."""
        self.join(rows, self.prefill(rows))

    def prefill(self, rows: Sequence[Row]) -> list[Prefilled]:
        """The prompt caches of `rows`, not yet in the batch (`join` puts them in): one a row with a prefix
        cache, else one for the group. Touches no state of the running batch, so another thread may
        prefill while this one steps (each thread's forward keeps its own adapter state)."""
        import torch

        if not rows:
            return []
        for r in rows:
            if not r.prompt:
                raise ValueError("a row needs a non-empty prompt")
        with torch.inference_mode():
            if self.prefix_cache is not None:  # each row alone: no padding, and a stored prefix to start from
                return [self._prefill_one(r) for r in rows]
            return [self._prefill_group(rows)]

    def join(self, rows: Sequence[Row], parts: Sequence[Prefilled]) -> None:
        """Join prefilled `rows` (their `prefill` parts, in order) to the running batch."""
        import torch

        if not rows:
            return
        with torch.inference_mode():
            self._join(rows, list(parts))

    def _join(self, rows: Sequence[Row], parts: list[Prefilled]) -> None:
        import torch

        now = time.perf_counter()
        live = [_Live(r, [], torch.Generator().manual_seed(int(r.seed)) if r.temperature > 0 else None, now)
                for r in rows]
        if self._cache is not None and self.live and self._admit_in_place(parts):
            self.live = self.live + live
            return
        if self._cache is not None and self.live:
            parts.insert(0, (self._cache, self._mask, self._pos, self._logits))
            live = self.live + live
        if len(parts) == 1:
            self._cache, self._mask, self._pos, self._logits = parts[0]
        else:
            self._cache, self._mask = _join_caches([(c, m) for c, m, _, _ in parts])
            self._pos = torch.cat([pos for _, _, pos, _ in parts])
            self._logits = torch.cat([logits for _, _, _, logits in parts])
        self.live = live

    def _admit_in_place(self, parts: list[Prefilled]) -> bool:
        """Write the joining rows' caches into the running batch's free buffer rows (`kvcache`), when
        every layer has room and no joining prompt is wider than the batch; False (nothing done) if not."""
        import torch

        layers = in_place_layers(self._cache)
        width = self.width
        n = sum(int(mask.shape[0]) for _, mask, _, _ in parts)
        if layers is None or any(mask.shape[1] > width for _, mask, _, _ in parts):
            return False
        if not all(lay.room(n) for lay in layers):
            return False
        if any(len(cache.layers) != len(layers) for cache, _, _, _ in parts):  # before any row is written
            raise ValueError("caches of different depth")
        for cache, _, _, _ in parts:
            for lay, new in zip(layers, cache.layers, strict=True):
                lay.admit(new.keys, new.values)
        pad = [torch.nn.functional.pad(mask, (width - mask.shape[1], 0)) for _, mask, _, _ in parts]
        self._mask = torch.cat([self._mask, *pad])
        self._pos = torch.cat([self._pos, *[pos for _, _, pos, _ in parts]])
        self._logits = torch.cat([self._logits, *[logits for _, _, _, logits in parts]])
        return True

    def _prefill_group(self, rows: Sequence[Row]) -> Prefilled:
        """Prefill `rows` together, left-padded to the longest: (cache, mask, next positions, last logits)."""
        import torch

        width = max(len(r.prompt) for r in rows)
        n = len(rows)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r.prompt):] = torch.tensor(list(r.prompt), dtype=torch.long)
            mask[i, width - len(r.prompt):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = new_cache(self.grow_cache)
        out = self.forward([r.adapter for r in rows], input_ids=ids, attention_mask=mask, position_ids=positions,
                           use_cache=True, logits_to_keep=1, **{self._key: cache})
        return cache, mask, positions[:, -1:] + 1, out.logits[:, -1, :].float()

    def _prefill_one(self, row: Row) -> Prefilled:
        """Prefill one row from the longest stored prefix of its prompt, and store the prompt's cache."""
        import torch

        assert self.prefix_cache is not None
        size = len(row.prompt)
        hit = self.prefix_cache.lookup(row.adapter, row.prompt)
        cache = new_cache(self.grow_cache)
        if hit is not None:
            for i, (keys, values) in enumerate(hit.layers):
                cache.update(keys, values, i)  # copies: the stored entry stays as it was
        mask = torch.ones((1, size), dtype=torch.long)
        if hit is not None and hit.logits is not None:
            logits = hit.logits.clone()
        else:
            start = hit.length if hit is not None else 0
            ids = torch.tensor([list(row.prompt[start:])], dtype=torch.long)
            positions = torch.arange(start, size, dtype=torch.long).unsqueeze(0)
            out = self.forward([row.adapter], input_ids=ids, attention_mask=mask, position_ids=positions,
                               use_cache=True, logits_to_keep=1, **{self._key: cache})
            logits = out.logits[:, -1, :].float()
            self.prefix_cache.store(row.adapter, row.prompt, [(lay.keys, lay.values) for lay in cache.layers], logits)
        return cache, mask, torch.tensor([[size]], dtype=torch.long), logits

    def step(self) -> list[RowEvent]:
        """Choose every row's next token, retire the rows that ended, and run the others one position on."""
        import torch

        if not self.live:
            return []
        with torch.inference_mode():
            return self._step()

    def _step(self) -> list[RowEvent]:
        import torch

        logits = self._logits
        if self.vocab_size is not None and logits.shape[1] > self.vocab_size:
            logits[:, self.vocab_size:] = float("-inf")
        grammar = [b for b, lv in enumerate(self.live) if lv.row.constraint is not None]
        dead = set()
        if grammar:
            words = bitmask_words(logits.shape[1])
            bitmask = torch.zeros((len(grammar), words), dtype=torch.int32)
            for j, b in enumerate(grammar):
                constraint = self.live[b].row.constraint
                assert constraint is not None
                constraint.fill(bitmask, j)
            index = torch.tensor(grammar, dtype=torch.long)
            sub = logits[index]
            apply_bitmask(sub, bitmask)
            logits[index] = sub
            dead = {grammar[j] for j, d in enumerate(torch.isinf(sub).all(dim=-1).tolist()) if d}
        chosen = logits.argmax(dim=-1).tolist()
        for b, lv in enumerate(self.live):
            if lv.generator is not None and b not in dead:
                chosen[b] = int(choose_token(logits[b:b + 1], lv.row.temperature, lv.row.top_p, lv.generator)[0])
        events: list[RowEvent] = []
        keep: list[int] = []
        now = time.perf_counter()
        for b, lv in enumerate(self.live):
            tok, row = int(chosen[b]), lv.row
            error = ""
            if b in dead:
                error = "the grammar allows no next token"
            elif row.constraint is not None and not row.constraint.accept(tok):
                error = f"the grammar rejected token {tok}"
            stopped = not error and (tok in self.stop_ids or (row.constraint is not None and row.constraint.finished()))
            appended = not error and tok not in self.stop_ids
            if appended:
                lv.tokens.append(tok)
            full = len(lv.tokens) >= row.max_new_tokens
            done = None
            if error or stopped or full:
                done = Decoded(lv.tokens, len(row.prompt), truncated=full and not stopped, seconds=now - lv.started,
                               error=error)
            else:
                keep.append(b)
            events.append(RowEvent(row.key, tok if appended else None, done))
        self._select(keep)
        if self.live:
            step_ids = torch.tensor([[lv.tokens[-1]] for lv in self.live], dtype=torch.long)
            self._mask = torch.cat([self._mask, torch.ones((len(self.live), 1), dtype=torch.long)], dim=1)
            out = self.forward([lv.row.adapter for lv in self.live], input_ids=step_ids, attention_mask=self._mask,
                               position_ids=self._pos, use_cache=True, **{self._key: self._cache})
            self._logits = out.logits[:, -1, :].float()
            self._pos = self._pos + 1
        return events

    def drop(self, keys: Sequence[Any]) -> None:
        """Take the rows with these keys out of the batch (cancelled requests)."""
        import torch

        gone = set(keys)
        with torch.inference_mode():
            self._select([b for b, lv in enumerate(self.live) if lv.row.key not in gone])

    def _select(self, keep: list[int]) -> None:
        import torch

        if len(keep) == len(self.live):
            return
        if not keep:
            self.live, self._cache, self._mask, self._pos, self._logits = [], None, None, None, None
            return
        layers = in_place_layers(self._cache)
        if layers is not None:  # in place: each leaving row is overwritten by the last row
            order = list(range(len(self.live)))
            for b in sorted(set(order) - set(keep), reverse=True):
                for lay in layers:
                    lay.remove(b)
                order[b] = order[-1]
                order.pop()
            keep = order
        index = torch.tensor(keep, dtype=torch.long)
        if layers is None:
            self._cache.batch_select_indices(index)
        self._mask, self._pos, self._logits = self._mask[index], self._pos[index], self._logits[index]
        self.live = [self.live[b] for b in keep]
        # Columns that no remaining row uses (left padding of rows that left) are cut away; in place, once
        # they are a quarter of the width (each cut moves the whole cache).
        used = self._mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        if first > 0 and (layers is None or first * 4 >= self.width):
            if layers is not None:
                for lay in layers:
                    lay.trim(first)
            else:
                for layer in self._cache.layers:
                    if getattr(layer, "keys", None) is not None and layer.keys.numel():
                        layer.keys = layer.keys[:, :, first:, :]
                        layer.values = layer.values[:, :, first:, :]
            self._mask = self._mask[:, first:]


def _join_caches(parts: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """Concatenate KV caches (with their masks) along the batch, left-padding each to the widest; the
    first cache object is reused."""
    import torch

    width = max(mask.shape[1] for _, mask in parts)

    def pad(t: Any, cols: int) -> Any:
        if cols == 0:
            return t
        shape = list(t.shape)
        shape[-2] = cols
        return torch.cat([t.new_zeros(shape), t], dim=-2)

    first = parts[0][0]
    depth = len(first.layers)
    for cache, _ in parts:
        if len(cache.layers) != depth:
            raise ValueError("caches of different depth")
        for layer in cache.layers:
            if not joinable(layer):
                raise ValueError("only full-attention DynamicCache layers can be joined")
    gaps = [width - mask.shape[1] for _, mask in parts]
    for i in range(depth):
        layers = [cache.layers[i] for cache, _ in parts]
        keys = torch.cat([pad(lay.keys, g) for lay, g in zip(layers, gaps, strict=True)])
        values = torch.cat([pad(lay.values, g) for lay, g in zip(layers, gaps, strict=True)])
        first.layers[i].keys, first.layers[i].values = keys, values
    joined = torch.cat([torch.nn.functional.pad(mask, (g, 0)) for (_, mask), g in zip(parts, gaps, strict=True)])
    return first, joined
