"""`serve.prefix.PrefixCache` and `ContinuousBatch` prefilling from it: the same tokens, less prefill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from test_continuous_batch import two_adapter_model

from schema_specialist.generate.decoding import chat_ids, decode, stop_ids_of
from schema_specialist.serve.continuous import BASE_ADAPTER, ContinuousBatch, Row
from schema_specialist.serve.prefix import PrefixCache, common_prefix


def _layers(n: int, depth: int = 2) -> list[tuple[Any, Any]]:
    """Fake per-layer keys/values whose column i holds the value i (to check where a prefix is cut)."""
    col = torch.arange(n, dtype=torch.float32).reshape(1, 1, n, 1)
    return [(col.clone(), col.clone() + 100) for _ in range(depth)]


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3, 4], [1, 2, 9]) == 2
    assert common_prefix([1, 2, 3], [1, 2, 3, 4]) == 3
    assert common_prefix((5, 6), [5, 6]) == 2
    assert common_prefix([1], [2]) == 0 and common_prefix([], [1]) == 0
    long = list(range(1000))
    assert common_prefix(long, long[:637] + [-1]) == 637


def test_lookup_takes_the_longest_prefix_of_the_same_adapter() -> None:
    pc = PrefixCache(max_tokens=1000, min_prefix=3)
    system = [7, 7, 7, 7, 7]
    pc.store("a", system + [1, 2], _layers(7), torch.zeros(1, 4))
    pc.store("a", system + [1, 3, 3], _layers(8), torch.zeros(1, 4))
    pc.store("b", system + [1, 3, 3, 3], _layers(9), torch.zeros(1, 4))
    hit = pc.lookup("a", system + [1, 3, 4, 4])
    assert hit is not None and hit.length == 7 and hit.logits is None
    keys, values = hit.layers[0]
    assert keys.shape[2] == 7 and keys.flatten().tolist() == list(range(7)) and values[0, 0, -1, 0] == 106
    assert pc.lookup("c", system + [1, 2]) is None  # another adapter's cache is never used
    assert pc.lookup("a", [9] + system) is None
    assert pc.lookup("a", [7, 7, 8]) is None  # shorter than min_prefix


def test_an_exact_prompt_comes_back_whole_with_its_logits() -> None:
    pc = PrefixCache(max_tokens=1000, min_prefix=2)
    prompt = [4, 5, 6, 7]
    logits = torch.tensor([[0.5, 2.0, -1.0]])
    pc.store("a", prompt, _layers(4), logits)
    hit = pc.lookup("a", prompt)
    assert hit is not None and hit.length == 4 and torch.equal(hit.logits, logits)
    # A prompt that is a proper prefix of a stored one has no logits stored: its last token is left to prefill.
    short = pc.lookup("a", prompt[:3])
    assert short is not None and short.length == 2 and short.logits is None
    assert pc.stats()["hits"] == 2 and pc.stats()["tokens_reused"] == 6


def test_entries_are_copies_and_the_oldest_go_first_past_the_budget() -> None:
    pc = PrefixCache(max_tokens=10, min_prefix=2)
    layers = _layers(4)
    pc.store("a", [1, 1, 1, 1], layers, torch.zeros(1, 2))
    layers[0][0].fill_(-5)  # the caller's tensors change later: the entry does not
    hit = pc.lookup("a", [1, 1, 1, 1])
    assert hit is not None and hit.layers[0][0].flatten().tolist() == [0, 1, 2, 3]
    pc.store("a", [2, 2, 2, 2], _layers(4), torch.zeros(1, 2))
    pc.lookup("a", [1, 1, 1, 1])  # used again: now the newest
    pc.store("a", [3, 3, 3, 3], _layers(4), torch.zeros(1, 2))  # 12 tokens > 10: the least recent leaves
    assert pc.tokens == 8 and len(pc) == 2
    assert pc.lookup("a", [2, 2, 2, 2]) is None and pc.lookup("a", [1, 1, 1, 1]) is not None
    pc.store("a", list(range(11)), _layers(11), torch.zeros(1, 2))  # longer than the whole budget: not kept
    assert len(pc) == 2
    off = PrefixCache(max_tokens=0)
    off.store("a", [1, 1, 1, 1], _layers(4), torch.zeros(1, 2))
    assert off.lookup("a", [1, 1, 1, 1]) is None and len(off) == 0


@pytest.fixture(scope="module")
def peft_model(tmp_path_factory: pytest.TempPathFactory, tiny_mistral_dir: Path) -> Any:
    return two_adapter_model(tmp_path_factory.mktemp("pc") / "adapters", tiny_mistral_dir)


def _run(cb: ContinuousBatch, rows: list[Row]) -> dict[Any, list[int]]:
    cb.add(rows)
    done: dict[Any, list[int]] = {}
    while len(cb):
        for ev in cb.step():
            if ev.done is not None:
                done[ev.key] = list(ev.done.tokens)
    return done


def test_rows_prefilled_from_the_cache_decode_as_without_it(peft_model: Any) -> None:
    model, tok = peft_model
    stop = stop_ids_of(model, tok)
    schema_system = "Answer in JSON for this schema: " + ", ".join(f"field_{i} (a string)" for i in range(12))
    prompts = [chat_ids(tok, [{"role": "system", "content": schema_system}, {"role": "user", "content": q}])
               for q in ("Order A-1 was paid.", "hi", "Ship B-22 tomorrow, 99.5 dollars in total.")]
    calls: list[tuple[int, int]] = []  # (rows, input tokens a row) of each forward

    def spy(names: list[str], **kwargs: Any) -> Any:
        calls.append(tuple(kwargs["input_ids"].shape))
        return model(adapter_names=names, **kwargs)

    rows = [Row(p, 10, key=(name, i), adapter=name) for i, p in enumerate(prompts) for name in ("flag", BASE_ADAPTER)]
    want = _run(ContinuousBatch(model, stop_ids=stop, pad_id=0, forward=spy), list(rows))
    assert want[("flag", 0)] != want[(BASE_ADAPTER, 0)]
    calls.clear()
    pc = PrefixCache(max_tokens=4096)
    got = _run(ContinuousBatch(model, stop_ids=stop, pad_id=0, forward=spy, prefix_cache=pc), list(rows))
    assert got == want
    prefills = [c for c in calls if c[1] > 1]
    assert len(prefills) == 6 and all(c[0] == 1 for c in prefills)  # each row alone
    # The second and third prompt of each adapter prefilled only what follows the shared system message.
    assert pc.hits == 4 and pc.tokens_reused >= 4 * len(chat_ids(tok, [{"role": "system", "content": schema_system}])) - 8
    # The same prompts again (a strict retry): no prefill at all, the same tokens.
    calls.clear()
    again = _run(ContinuousBatch(model, stop_ids=stop, pad_id=0, forward=spy, prefix_cache=pc), list(rows))
    assert again == want and not [c for c in calls if c[1] > 1]
    with model.disable_adapter():
        alone = decode(model.get_base_model(), [prompts[1]], stop_ids=stop, pad_id=0, max_new_tokens=10)[0]
    assert want[(BASE_ADAPTER, 1)] == alone.tokens
