"""The decoding step's attention for the server's batches: two small matmuls instead of torch's CPU SDPA.

At one query token a row, torch's CPU flash kernel (`scaled_dot_product_attention`) costs far more
than the work: about 3 ms a layer for 16 rows of 200 cached tokens on one core, where the two batched
matmuls below (scores over the cache, then the weighted sum of the values) take about 0.2 ms. Grouped
query heads share their key/value head without a copy (`repeat_kv`). Prefill (many query tokens a
row) keeps torch's SDPA. `use_decode_attention(model)` switches a loaded model to it.
"""

from __future__ import annotations

from typing import Any

from .kvcache import filled_width

NAME = "schemagen_decode"


def decode_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                     scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers' attention-function signature: query [B, Hq, q, D], key/value [B, Hkv, W, D] ->
    ([B, q, Hq, D], None). The mask is the SDPA one: bool (True = attend) or additive float, or None."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, dim = query.shape
    kv_heads, width = key.shape[1], key.shape[2]
    # A growing cache layer (`kvcache`) hands over its whole buffer: only the first `live` columns are filled.
    live = filled_width()
    live = width if live is None or live > width else live
    if q_len != 1 or heads % kv_heads or dropout:
        key, value = key[:, :, :live], value[:, :, :live]
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    group = heads // kv_heads
    scale = scaling if scaling is not None else dim ** -0.5
    # Batch and key/value heads folded into one 3-D bmm batch (a view of the contiguous cache).
    q = (query.reshape(batch, kv_heads, group, dim) * scale).reshape(batch * kv_heads, group, dim)
    keys = key.reshape(batch * kv_heads, width, dim)
    values = value.reshape(batch * kv_heads, width, dim)
    scores = torch.bmm(q, keys.transpose(1, 2)).float().reshape(batch, kv_heads, group, width)
    if live < width:
        scores[..., live:] = float("-inf")
    if attention_mask is not None:
        mask = attention_mask[..., -live:].reshape(batch, 1, 1, live)
        filled = scores[..., :live]
        if mask.dtype == torch.bool:
            filled.masked_fill_(~mask, float("-inf"))
        else:
            filled.add_(mask.float())
    weights = scores.softmax(dim=-1).to(value.dtype).reshape(batch * kv_heads, group, width)
    out = torch.bmm(weights, values)  # [B * Hkv, group, D]; query head h used key/value head h // group
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_decode_attention(model: Any) -> bool:
    """Switch `model` (a transformers model using SDPA) to `decode_attention`; False if it does not use SDPA."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) not in ("sdpa", NAME):
        return False
    AttentionInterface.register(NAME, decode_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    for module in model.modules():  # the model and every sub-config that names the implementation
        sub = getattr(module, "config", None)
        if sub is not None and getattr(sub, "_attn_implementation", None) == "sdpa":
            sub._attn_implementation = NAME
    return True
