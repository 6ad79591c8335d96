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

The buffer also has spare rows. Rows join and leave a running batch in place (`admit`, `remove`):
a joining row's prompt cache is written into the next free row, right-aligned with the others; a
leaving row is overwritten by the last one. Only those rows are copied, where concatenating or
re-selecting the cache copies every row, and makes the next append copy it all again.
"""

from __future__ import annotations

import threading
from typing import Any

SPARE = 32  # columns of room a new buffer gets past what the append needs
SPARE_ROWS = 8  # rows of room a new buffer gets for rows that join the batch in place

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
            bufs: Any = getattr(me, "_bufs", None)
            rows = me.keys.shape[0]
            if not me.in_place() or bufs[0].shape[-2] < have + add:
                shape = list(me.keys.shape)
                shape[0] = max(rows + SPARE_ROWS, bufs[0].shape[0] if bufs is not None else 0)
                shape[-2] = have + add + max(SPARE, have // 4)
                bufs = (me.keys.new_zeros(shape), me.values.new_zeros(shape))
                bufs[0][:rows, :, :have] = me.keys
                bufs[1][:rows, :, :have] = me.values
                me._bufs = bufs
            bufs[0][:rows, :, have:have + add] = key_states
            bufs[1][:rows, :, have:have + add] = value_states
            me._show(rows, have + add)
            if add != 1:
                return me.keys, me.values
            _filled.width = have + add
            return bufs[0][:rows], bufs[1][:rows]

        def in_place(self) -> bool:
            """Whether `keys`/`values` are still the views of this layer's buffer (nobody replaced them)."""
            me: Any = self
            bufs, views = getattr(me, "_bufs", None), getattr(me, "_views", None)
            return (bufs is not None and views is not None and views[0] is me.keys and views[1] is me.values
                    and me.keys.numel() > 0)

        def room(self, rows: int) -> bool:
            """Whether `rows` more rows fit in the buffer in place."""
            me: Any = self
            return me.in_place() and me.keys.shape[0] + rows <= me._bufs[0].shape[0]

        def _show(self, rows: int, width: int) -> None:
            me: Any = self
            me.keys, me.values = me._bufs[0][:rows, :, :width], me._bufs[1][:rows, :, :width]
            me._views = (me.keys, me.values)

        def admit(self, keys: Any, values: Any) -> None:
            """Write a joining group's cache ([n, heads, P, dim], P <= the batch width) into free rows,
            right-aligned (the columns left of it zeroed); needs `room(n)`."""
            me: Any = self
            rows, width = me.keys.shape[0], me.keys.shape[-2]
            n, cols = keys.shape[0], keys.shape[-2]
            if not me.room(n) or cols > width:
                raise ValueError("no room in place for the joining rows")
            for buf, new in ((me._bufs[0], keys), (me._bufs[1], values)):
                buf[rows:rows + n, :, :width - cols].zero_()
                buf[rows:rows + n, :, width - cols:width] = new
            me._show(rows + n, width)

        def remove(self, row: int) -> None:
            """Take `row` out: the last row moves into its place."""
            me: Any = self
            rows, width = me.keys.shape[0], me.keys.shape[-2]
            if row != rows - 1:
                for buf in me._bufs:
                    buf[row, :, :width] = buf[rows - 1, :, :width]
            me._show(rows - 1, width)

        def trim(self, cols: int) -> None:
            """Drop the first `cols` columns (padding no row uses any more)."""
            me: Any = self
            rows, width = me.keys.shape[0], me.keys.shape[-2]
            for buf in me._bufs:
                buf[:rows, :, :width - cols] = buf[:rows, :, cols:width].clone()
            me._show(rows, width - cols)

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


def in_place_layers(cache: Any) -> list[Any] | None:
    """The cache's `GrowingLayer`s when every one still holds its buffer (rows can join and leave in
    place); None otherwise."""
    layers = list(getattr(cache, "layers", None) or [])
    if not layers or _GROWING is None or not all(isinstance(x, _GROWING) and x.in_place() for x in layers):
        return None
    return layers
