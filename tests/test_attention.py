"""`serve.attention.decode_attention`: the decoding step's two matmuls agree with torch's SDPA."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_one_query_token_matches_sdpa_with_grouped_heads_and_left_padding(mask_kind: str) -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from schema_specialist.serve.attention import decode_attention

    g = torch.Generator().manual_seed(0)
    batch, heads, kv_heads, width, dim = 3, 6, 2, 11, 8
    q = torch.randn(batch, heads, 1, dim, generator=g)
    k = torch.randn(batch, kv_heads, width, dim, generator=g)
    v = torch.randn(batch, kv_heads, width, dim, generator=g)
    keep = torch.ones(batch, 1, 1, width, dtype=torch.bool)
    keep[1, ..., :4] = False  # left padding of a shorter row
    keep[2, ..., :9] = False
    mask = {"none": None, "bool": keep,
            "float": torch.zeros(batch, 1, 1, width).masked_fill(~keep, float("-inf"))}[mask_kind]
    module = SimpleNamespace(num_key_value_groups=heads // kv_heads, is_causal=True, training=False)
    want, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.3)
    got, weights = decode_attention(module, q, k, v, mask, scaling=0.3)
    assert weights is None and got.shape == want.shape == (batch, 1, heads, dim)
    assert torch.allclose(got, want, atol=1e-5)


def test_a_loaded_model_switches_to_it_and_decodes(tiny_mistral_dir: Path) -> None:
    from schema_specialist.models import load_model
    from schema_specialist.serve.attention import NAME, use_decode_attention

    model = load_model(str(tiny_mistral_dir), dtype="float32").model
    assert model.config._attn_implementation == "sdpa"
    assert use_decode_attention(model) and model.config._attn_implementation == NAME
    out = model(input_ids=torch.tensor([[1, 5, 7]]), use_cache=True)
    step = model(input_ids=torch.tensor([[9]]), past_key_values=out.past_key_values, use_cache=True)
    assert torch.isfinite(step.logits).all()


def test_a_growing_cache_appends_in_place_and_decodes_the_same_tokens(tiny_mistral_dir: Path) -> None:
    from schema_specialist.generate.decoding import chat_ids
    from schema_specialist.models import load_model
    from schema_specialist.serve.attention import use_decode_attention
    from schema_specialist.serve.continuous import ContinuousBatch, Row
    from schema_specialist.serve.kvcache import SPARE, filled_width, new_cache

    loaded = load_model(str(tiny_mistral_dir), dtype="float32")
    model, tok = loaded.model, loaded.tokenizer
    assert use_decode_attention(model)
    prompts = [chat_ids(tok, [{"role": "user", "content": q}]) for q in
               ("Order A-1, paid.", "hi", "A much longer request: order B-22 shipped, 99.5 dollars in total.")]

    def run(grow: bool) -> dict[int, list[int]]:
        cb = ContinuousBatch(model, stop_ids=set(), pad_id=0, grow_cache=grow)
        done: dict[int, list[int]] = {}
        cb.add([Row(prompts[0], 12, key=0), Row(prompts[1], 40, key=1)])
        for step in range(60):
            if step == 3:
                cb.add([Row(prompts[2], 20, key=2)])  # a join: the caches are concatenated, the buffer restarts
            if step == 5 and grow:
                layer = cb._cache.layers[0]
                assert layer._bufs[0].shape[-2] > layer.keys.shape[-2]  # spare columns, filled in place
                assert layer.keys.data_ptr() == layer._bufs[0].data_ptr()
            for ev in cb.step():
                if ev.done is not None:
                    done[ev.key] = list(ev.done.tokens)
            if not len(cb):
                break
        return done

    # Row 0 leaves after 12 tokens (the cache is re-selected), row 1 runs past SPARE steps (a new buffer).
    assert SPARE < 40
    assert run(grow=True) == run(grow=False)
    cache = new_cache(grow=True)
    k = torch.zeros(1, 2, 5, 4)
    cache.update(k, k, 0)
    keys, _ = cache.update(torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4), 0)
    assert keys.shape[-2] == 6 + SPARE and cache.get_seq_length() == 6  # the whole buffer; the cache knows 6
    assert filled_width() == 6 and filled_width() is None  # what decode_attention reads, once


def test_rows_join_and_leave_a_growing_cache_in_place(tiny_mistral_dir: Path) -> None:
    """Joining rows no wider than the batch are written into the buffer's free rows, leaving rows are
    overwritten by the last one, and every row decodes the tokens it would alone."""
    from schema_specialist.generate.decoding import chat_ids, decode
    from schema_specialist.models import load_model
    from schema_specialist.serve.attention import use_decode_attention
    from schema_specialist.serve.continuous import ContinuousBatch, Row

    loaded = load_model(str(tiny_mistral_dir), dtype="float32")
    model, tok = loaded.model, loaded.tokenizer
    assert use_decode_attention(model)
    long = chat_ids(tok, [{"role": "user", "content": "A much longer request: order B-22 shipped, 99.5 dollars, "
                                                      "paid by card, to be delivered on Monday morning."}])
    short = [chat_ids(tok, [{"role": "user", "content": q}]) for q in ("Order A-1, paid.", "hi", "x y z")]
    lengths = {"long": 30, "a": 6, "b": 14, "c": 9}
    prompts = {"long": long, "a": short[0], "b": short[1], "c": short[2]}
    alone = {k: decode(model, [p], stop_ids=set(), pad_id=0, max_new_tokens=lengths[k])[0].tokens
             for k, p in prompts.items()}
    cb = ContinuousBatch(model, stop_ids=set(), pad_id=0, grow_cache=True)
    cb.add([Row(long, lengths["long"], key="long")])
    done: dict[str, list[int]] = {}
    buffers, in_place = set(), 0
    for step in range(40):
        if step in (2, 4, 5):  # one joins at a time, each shorter than the running batch
            key = {2: "a", 4: "b", 5: "c"}[step]
            before = cb._cache.layers[0]._bufs[0].data_ptr()
            cb.add([Row(prompts[key], lengths[key], key=key)])
            in_place += cb._cache.layers[0].in_place() and cb._cache.layers[0]._bufs[0].data_ptr() == before
        for ev in cb.step():
            if ev.done is not None:
                done[str(ev.key)] = list(ev.done.tokens)
        if len(cb):
            buffers.add(cb._cache.layers[0]._bufs[0].data_ptr())
        else:
            break
    assert in_place == 3  # all three joins were written into the same buffer
    assert "a" in done and len(buffers) <= 2  # "a" left mid-batch; at most one new buffer (the columns ran out)
    assert done == {k: list(v) for k, v in alone.items()}
