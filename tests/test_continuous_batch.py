"""`serve.continuous.ContinuousBatch`: rows that join mid-batch, per-row adapters, grammars and seeds, cancelled rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_decoding import order_matcher
from test_router import COLOR, FLAG, build_adapter

from schema_specialist.generate.decoding import chat_ids, decode, stop_ids_of
from schema_specialist.serve.continuous import BASE_ADAPTER, ContinuousBatch, Row
from tests.conftest import ORDER_SCHEMA


@pytest.fixture(scope="module")
def tiny(tiny_mistral_dir: Path) -> Any:
    from schema_specialist.models import load_model

    return load_model(str(tiny_mistral_dir), dtype="float32")


def two_adapter_model(root: Path, base_dir: Path) -> Any:
    """The tiny base with two random LoRA adapters, "flag" and "color", loaded unmerged; (model, tokenizer)."""
    from peft import PeftModel

    from schema_specialist.models import load_model

    build_adapter(base_dir, root, "flag", FLAG, seed=1)
    build_adapter(base_dir, root, "color", COLOR, seed=2)
    loaded = load_model(str(base_dir), dtype="float32")
    model = PeftModel.from_pretrained(loaded.model, str(root / "flag"), adapter_name="flag", is_trainable=False)
    model.load_adapter(str(root / "color"), adapter_name="color", is_trainable=False)
    model.eval()
    return model, loaded.tokenizer


@pytest.fixture(scope="module")
def peft_model(tmp_path_factory: pytest.TempPathFactory, tiny_mistral_dir: Path) -> Any:
    return two_adapter_model(tmp_path_factory.mktemp("cb") / "adapters", tiny_mistral_dir)


def _prompts(tok: Any) -> list[list[int]]:
    questions = ["Order A-1, paid, 12 dollars.", "hi", "A much longer request that pads the others: order "
                 "B-22 was shipped yesterday and came to 99.5 dollars in total, please record it.", "x y z"]
    return [chat_ids(tok, [{"role": "user", "content": q}]) for q in questions]


def _run(cb: ContinuousBatch, joins: dict[int, list[Row]], steps: int = 200) -> dict[Any, Any]:
    """Step `cb`, adding joins[step] before that step; the finished rows' results by key."""
    done: dict[Any, Any] = {}
    for step in range(steps):
        cb.add(joins.get(step, []))
        for ev in cb.step():
            if ev.done is not None:
                done[ev.key] = ev.done
        if not len(cb) and step >= max(joins):
            break
    return done


def test_rows_joining_mid_batch_decode_as_they_would_alone(tiny: Any) -> None:
    model, tok = tiny.model, tiny.tokenizer
    prompts = _prompts(tok)
    first = decode(model, prompts, stop_ids=set(), pad_id=0, max_new_tokens=14)
    stops = {first[0].tokens[6], first[1].tokens[3]}  # rows end at different steps
    alone = [decode(model, [p], stop_ids=stops, pad_id=0, max_new_tokens=14)[0] for p in prompts]
    cb = ContinuousBatch(model, stop_ids=stops, pad_id=0)
    done = _run(cb, {0: [Row(prompts[0], 14, key=0)], 2: [Row(prompts[1], 14, key=1), Row(prompts[2], 14, key=2)],
                     5: [Row(prompts[3], 14, key=3)]})
    assert [done[i].tokens for i in range(4)] == [a.tokens for a in alone]
    assert [done[i].truncated for i in range(4)] == [a.truncated for a in alone]
    assert [done[i].prompt_tokens for i in range(4)] == [len(p) for p in prompts]
    assert cb.width == 0 and len(cb) == 0


def test_each_row_gets_its_own_adapter_in_one_forward(peft_model: Any) -> None:
    model, tok = peft_model
    prompts = _prompts(tok)[:3]
    stop = stop_ids_of(model, tok)
    want: dict[str, list[list[int]]] = {}
    for name in ("flag", "color"):
        model.set_adapter(name)
        want[name] = [d.tokens for d in decode(model.get_base_model(), prompts, stop_ids=stop, pad_id=0,
                                               max_new_tokens=10)]
    with model.disable_adapter():
        want[BASE_ADAPTER] = [d.tokens for d in decode(model.get_base_model(), prompts, stop_ids=stop, pad_id=0,
                                                       max_new_tokens=10)]
    assert want["flag"] != want["color"] != want[BASE_ADAPTER]
    seen: list[list[str]] = []

    def spy(names: list[str], **kwargs: Any) -> Any:
        seen.append(list(names))
        return model(adapter_names=names, **kwargs)

    cb = ContinuousBatch(model, stop_ids=stop, pad_id=0, forward=spy)
    rows = [Row(p, 10, key=(name, i), adapter=name) for i, p in enumerate(prompts)
            for name in ("flag", BASE_ADAPTER, "color")]
    done = _run(cb, {0: list(rows)})
    for (name, i), d in done.items():
        assert d.tokens == want[name][i], (name, i)
    assert {"flag", "color", BASE_ADAPTER} <= set(seen[1])  # one decoding step ran all three
    from schema_specialist.serve.lora import MixedAdapterForward

    fast = MixedAdapterForward(model)  # the server's forward: hooks installed once, LoRA fused over the rows
    try:
        assert fast.persistent and fast.fused is not None
        done = _run(ContinuousBatch(model, stop_ids=stop, pad_id=0, forward=fast), {0: rows})
        for (name, i), d in done.items():
            assert d.tokens == want[name][i], (name, i)
    finally:
        fast.close()
    from peft.tuners.lora import LoraLayer

    assert not any("_mixed_batch_forward" in vars(m) for m in model.modules() if isinstance(m, LoraLayer))
    done = _run(ContinuousBatch(model, stop_ids=stop, pad_id=0, forward=spy), {0: rows})  # PEFT's own path again
    for (name, i), d in done.items():
        assert d.tokens == want[name][i], (name, i)


@pytest.mark.parametrize("engine", ["llguidance", "xgrammar"])
def test_grammar_rows_and_free_rows_share_a_batch(tiny: Any, engine: str) -> None:
    model, tok = tiny.model, tiny.tokenizer
    matcher = order_matcher(tiny, engine)
    prompts = _prompts(tok)
    stop = stop_ids_of(model, tok)
    free_alone = decode(model, prompts[:2], stop_ids=stop, pad_id=0, max_new_tokens=20)
    cb = ContinuousBatch(model, stop_ids=stop, pad_id=0)
    rows = [Row(prompts[0], 20, key="free0"), Row(prompts[2], 200, key="g0", constraint=matcher()),
            Row(prompts[1], 20, key="free1"), Row(prompts[3], 200, key="g1", constraint=matcher(),
                                                  temperature=1.0, seed=3)]
    done = _run(cb, {0: rows}, steps=400)
    assert done["free0"].tokens == free_alone[0].tokens and done["free1"].tokens == free_alone[1].tokens
    for key in ("g0", "g1"):
        assert not done[key].error and not done[key].truncated
        value = json.loads(tok.decode(done[key].tokens, skip_special_tokens=True))
        assert value["status"] in ORDER_SCHEMA["properties"]["status"]["enum"]


def test_a_sampled_row_depends_on_its_seed_not_on_its_neighbours(tiny: Any) -> None:
    model, tok = tiny.model, tiny.tokenizer
    prompts = _prompts(tok)

    def sample(companions: list[Row], seed: int) -> list[int]:
        cb = ContinuousBatch(model, stop_ids=set(), pad_id=0)
        done = _run(cb, {0: [Row(prompts[0], 12, key="me", temperature=1.0, top_p=0.9, seed=seed), *companions]})
        return list(done["me"].tokens)

    alone = sample([], 7)
    crowded = sample([Row(p, 12, key=i, temperature=1.0, seed=i) for i, p in enumerate(prompts[1:])], 7)
    assert alone == crowded
    assert sample([], 8) != alone


def test_dropped_rows_leave_and_the_cache_shrinks(tiny: Any) -> None:
    model, tok = tiny.model, tiny.tokenizer
    prompts = _prompts(tok)
    alone = decode(model, [prompts[1]], stop_ids=set(), pad_id=0, max_new_tokens=8)[0]
    cb = ContinuousBatch(model, stop_ids=set(), pad_id=0)
    cb.add([Row(prompts[2], 8, key="long"), Row(prompts[1], 8, key="short")])
    cb.step()
    wide = cb.width
    cb.drop(["long"])
    assert cb.keys == ["short"] and cb.width < wide  # the long prompt's columns are gone
    done = _run(cb, {0: []})
    assert done["short"].tokens == alone.tokens
