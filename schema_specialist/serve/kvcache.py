"""The server batch's KV cache: layers that append a decoding step in place instead of concatenating.

transformers' `DynamicLayer` concatenates the whole cache at every step (every layer, every row):
about 8 ms of a 65 ms 16-row step on one core. `GrowingLayer` keeps a zeroed buffer with spare
columns and writes each step's keys and values into it. `keys`/`values` stay the filled part (a
view), so the cache's length, row selection and trimming work as before; whoever replaces them
(rows leaving, trimming, joining) makes the buffer stale, and the next append starts a new one.

A one-token append returns the whole buffer, contiguous, so that the decode attention's batched
matmuls read it in place (a slice of it would be copied first); `attention.decode_attention` masks
the spare columns, whose count it learns from `filled_width`. Only a model whose attention is
`decode_attention` may use these layers (`new_cache(grow=True)`).
"""

from __future__ import annotations

import threading
from typing import Any

SPARE = 32  # columns of room a new buffer gets past what the append needs

_filled = threading.local()


def filled_width() -> int | None:
    """The filled columns of the buffer the last one-token append in this thread returned (once)."""
    width = getattr(_filled, "width", None)
    _filled.width = None
    return width


def _layer_class() -> Any:
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):  # type: ignore[misc]
        """A `DynamicLayer` that appends into spare columns of a buffer (see the module docstring)."""

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            me: Any = self  # transformers types keys/values as Optional
            if not me.is_initialized or not me.keys.numel():
                me._views = None
                return tuple(super().update(key_states, value_states, *args, **kwargs))  # type: ignore[return-value]
            have, add = me.keys.shape[-2], key_states.shape[-2]
            bufs, views = getattr(me, "_bufs", None), getattr(me, "_views", None)
            if (bufs is None or views is None or views[0] is not me.keys or views[1] is not me.values
                    or bufs[0].shape[-2] < have + add):
                shape = list(me.keys.shape)
                shape[-2] = have + add + SPARE
                bufs = (me.keys.new_zeros(shape), me.values.new_zeros(shape))
                bufs[0][:, :, :have] = me.keys
                bufs[1][:, :, :have] = me.values
                me._bufs = bufs
            bufs[0][:, :, have:have + add] = key_states
            bufs[1][:, :, have:have + add] = value_states
            me.keys, me.values = bufs[0][:, :, :have + add], bufs[1][:, :, :have + add]
            me._views = (me.keys, me.values)
            if add != 1:
                return me.keys, me.values
            _filled.width = have + add
            return bufs

    return GrowingLayer


_GROWING: Any = None


def new_cache(grow: bool = False) -> Any:
    """An empty `DynamicCache`; with `grow`, its layers are `GrowingLayer`s."""
    global _GROWING
    from transformers import DynamicCache

    cache = DynamicCache()
    if grow:
        if _GROWING is None:
            _GROWING = _layer_class()
        cache.layer_class_to_replicate = _GROWING
    return cache


def joinable(layer: Any) -> bool:
    """Whether `layer` is a full-attention layer whose keys/values can be padded and concatenated."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    return isinstance(layer, DynamicLayer) and not isinstance(layer, DynamicSlidingWindowLayer)
