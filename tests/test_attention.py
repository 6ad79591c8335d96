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
