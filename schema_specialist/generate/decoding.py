"""Batched decoding for small CPU models: a KV cache that drops rows as they finish, optional grammar.

`transformers.generate` runs a batch until its longest row ends and goes through outlines' logits
processors row by row in Python. Here prompts are sorted by length, prefilled together, and every
row leaves the batch (and the cache) at its stop token, so the batch gets cheaper as it drains.
A grammar constraint is one object a row (`RowConstraint`) that fills that row's allowed-token
bitmask (32 tokens a word, the layout llguidance and xgrammar share) and consumes the chosen token.

`decode` runs a fixed list of prompts; `serve.continuous.ContinuousBatch` is the step-wise form the
server uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class RowConstraint(Protocol):
    """One row's grammar state."""

    def fill(self, bitmask: Any, row: int) -> None:
        """Write the allowed next tokens into `bitmask[row]`."""

    def accept(self, token: int) -> bool:
        """Consume `token`; False when the grammar rejects it."""

    def finished(self) -> bool:
        """Whether the grammar has ended (its stop token consumed)."""


class RowCheck(Protocol):
    """One unconstrained row's early verdict: whether its answer is already settled as a failure."""

    def hopeless(self, tokens: list[int]) -> bool:
        """Whether `tokens` (the row's answer so far) can no longer become an answer worth finishing."""


# One factory of row constraints for every row, or one a prompt (a grammar for each request).
Constraint = Callable[[], RowConstraint] | Sequence[Callable[[], RowConstraint]]


@dataclass
class Decoded:
    """One row's result: the new tokens (stop token excluded) and what ended it."""

    tokens: list[int]
    prompt_tokens: int
    truncated: bool  # reached max_new_tokens before a stop token
    seconds: float  # the batch's wall time divided by its rows
    error: str = ""  # the grammar allowed no token (dead end)
    abandoned: bool = False  # stopped by its `RowCheck`: the answer could no longer succeed


TOP_K = 50


def bitmask_words(vocab: int) -> int:
    return (vocab + 31) // 32


def apply_bitmask(logits: Any, bitmask: Any) -> None:
    """Set to -inf the logits of tokens whose bit is 0 (in place); columns past the mask are banned."""
    import torch

    rows, vocab = logits.shape
    shifts = torch.arange(32, dtype=torch.int32)
    bits = ((bitmask[:rows].unsqueeze(-1) >> shifts) & 1).reshape(rows, -1)
    allowed = bits[:, :vocab].bool()
    if allowed.shape[1] < vocab:
        pad = torch.zeros(rows, vocab - allowed.shape[1], dtype=torch.bool)
        allowed = torch.cat([allowed, pad], dim=1)
    logits.masked_fill_(~allowed, float("-inf"))


def choose_token(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    # top-k (50, as transformers does by default) then top-p inside it: a sort of the whole vocabulary
    # and a multinomial over it cost more than the forward pass of a 135M model.
    top, idx = logits.topk(min(TOP_K, logits.shape[-1]), dim=-1)
    probs = torch.softmax(top / temperature, dim=-1)
    if top_p < 1.0:
        cum = probs.cumsum(dim=-1)
        probs = probs.masked_fill((cum - probs) > top_p, 0.0)
    probs = torch.nan_to_num(probs, nan=0.0)
    probs[probs.sum(-1) == 0, 0] = 1.0  # every token banned: take the best (a dead end, reported)
    pick = torch.multinomial(probs, 1, generator=generator)
    return idx.gather(-1, pick).squeeze(-1)


def fold_output_head(model: Any) -> None:
    """Give the output head its input with plain strides, so torch runs it as one matrix product.

    With `logits_to_keep=1` the head gets a slice of the last hidden states, `[rows, 1, hidden]`
    with the prompt's strides. For frozen weights (a PEFT model: `requires_grad` False) torch's
    matmul does not fold such a slice into one `mm`: it broadcasts the `[vocab, hidden]` weight to a
    `bmm` and copies it once a row (SmolLM2, one core: 90 ms a row against 7 ms for the whole
    batch). A pre-hook copies the small slice instead; installed once per head.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if head is None or getattr(head, "_schemagen_folded", False):
        return
    head.register_forward_pre_hook(_plain_strides)
    head._schemagen_folded = True


def _plain_strides(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if not args or getattr(args[0], "dim", lambda: 0)() < 3:
        return None
    x = args[0]
    plain = x.new_empty(x.shape)
    if plain.stride() == x.stride():
        return None
    return (plain.copy_(x), *args[1:])


def decode(model: Any, prompts: Sequence[Sequence[int]], *, stop_ids: set[int] | frozenset[int], pad_id: int,
           max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
           batch_size: int = 32, constraint: Constraint | None = None,
           vocab_size: int | None = None, on_row: Callable[[int], None] | None = None,
           give_up: Callable[[], RowCheck] | None = None) -> list[Decoded]:
    """Decode every prompt (token ids, chat template applied) and return the rows in prompt order.

    Prompts go in batches of `batch_size`, longest first, so a batch pads little. With `constraint`,
    each row gets a fresh `RowConstraint` and only the tokens it allows can be chosen; a sequence of
    factories (one a prompt, in prompt order) gives each row its own grammar. With `give_up`, each row
    gets a fresh `RowCheck`, and a row it calls hopeless leaves the batch there (`abandoned`).
    """
    import torch

    fold_output_head(model)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[Decoded | None] = [None] * len(prompts)
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        factories = None if constraint is None else [
            constraint if callable(constraint) else constraint[i] for i in chunk]
        for i, row in zip(chunk, _decode_batch(model, [prompts[i] for i in chunk], stop_ids, pad_id,
                                               max_new_tokens, temperature, top_p, generator, factories,
                                               vocab_size, on_row, give_up), strict=True):
            results[i] = row
    return [r for r in results if r is not None]


def _decode_batch(model: Any, prompts: list[Sequence[int]], stop_ids: set[int] | frozenset[int], pad_id: int,
                  max_new_tokens: int, temperature: float, top_p: float, generator: Any,
                  factories: list[Callable[[], RowConstraint]] | None, vocab_size: int | None,
                  on_row: Callable[[int], None] | None,
                  give_up: Callable[[], RowCheck] | None = None) -> list[Decoded]:
    import torch
    from transformers import DynamicCache

    t0 = time.perf_counter()
    n = len(prompts)
    width = max(len(p) for p in prompts)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[r, width - len(p):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    rows = [make() for make in factories] if factories is not None else None
    checks = [give_up() for _ in range(n)] if give_up is not None else None
    new: list[list[int]] = [[] for _ in range(n)]
    done: list[Decoded | None] = [None] * n
    active = list(range(n))  # original row index of each live batch row
    cache = DynamicCache()
    key = cache_kwarg(model)
    bitmask = None
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                    logits_to_keep=1, **{key: cache})
        next_pos = positions[:, -1:] + 1
        for _step in range(max_new_tokens):
            logits = out.logits[:, -1, :].float()
            if vocab_size is not None and logits.shape[1] > vocab_size:
                logits[:, vocab_size:] = float("-inf")
            if rows is not None:
                words = bitmask_words(logits.shape[1])
                if bitmask is None or bitmask.shape[0] < len(active):
                    bitmask = torch.zeros((len(active), words), dtype=torch.int32)
                for b, r in enumerate(active):
                    rows[r].fill(bitmask, b)
                apply_bitmask(logits, bitmask)
            chosen = choose_token(logits, temperature, top_p, generator).tolist()
            dead_end = torch.isinf(logits).all(dim=-1).tolist() if rows is not None else [False] * len(active)
            keep: list[int] = []
            for b, r in enumerate(active):
                tok = int(chosen[b])
                error = ""
                if dead_end[b]:
                    error = "the grammar allows no next token"
                elif rows is not None and not rows[r].accept(tok):
                    error = f"the grammar rejected token {tok}"
                stopped = not error and (tok in stop_ids or (rows is not None and rows[r].finished()))
                if not error and tok not in stop_ids:
                    new[r].append(tok)
                hopeless = checks is not None and not error and not stopped and checks[r].hopeless(new[r])
                full = len(new[r]) >= max_new_tokens
                if error or stopped or full or hopeless:
                    done[r] = Decoded(new[r], len(prompts[r]), truncated=full and not stopped and not hopeless,
                                      seconds=0.0, error=error, abandoned=hopeless)
                    if on_row is not None:
                        on_row(1)
                else:
                    keep.append(b)
            if not keep:
                break
            step_ids = torch.tensor([[chosen[b]] for b in keep], dtype=torch.long)
            if len(keep) < len(active):
                index = torch.tensor(keep, dtype=torch.long)
                cache.batch_select_indices(index)
                mask = mask[index]
                next_pos = next_pos[index]
            active = [active[b] for b in keep]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
            out = model(input_ids=step_ids, attention_mask=mask, position_ids=next_pos, use_cache=True,
                        **{key: cache})
            next_pos = next_pos + 1
    seconds = (time.perf_counter() - t0) / n
    result = []
    for r in range(n):
        d = done[r] or Decoded(new[r], len(prompts[r]), truncated=True, seconds=0.0)
        d.seconds = seconds
        result.append(d)
    return result


def cache_kwarg(model: Any) -> str:
    """transformers 5.x renamed `past_key_values` to `cache` (the old name goes in 5.40)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def chat_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of `messages` under the chat template, ready for the assistant's answer."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def pad_id_of(tokenizer: Any) -> int:
    """The padding token: the tokenizer's, else its eos (many chat models have no pad token)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad)


def stop_ids_of(model: Any, tokenizer: Any) -> set[int]:
    """The end-of-turn tokens: the generation config's eos ids and the tokenizer's."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return {int(i) for i in ids}
