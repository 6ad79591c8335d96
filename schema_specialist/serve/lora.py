"""Mixed-adapter forward passes: PEFT's per-row `adapter_names`, with the hooks installed once.

`PeftModel(..., adapter_names=names)` walks every module and registers a pre-forward hook on each
LoRA layer on every call (about 10 ms a step for a 135M model with LoRA on all 7 projections, as
much as a whole bf16 decoding step of one row). Here one hook a LoRA layer is registered once and
reads the step's names from a holder. Models with wrapped auxiliary modules (`modules_to_save`) keep
PEFT's own per-call path, which routes those too.

PEFT's mixed-batch forward then splits each LoRA layer's input into one sub-batch an adapter (index,
two matmuls, index-put each): with two adapters, about 26 ms of a 71 ms 16-row step on one core.
For plain LoRA layers (no DoRA or other variant, no LoRA bias) `FusedLoRA` replaces it: every
adapter's A matrices side by side and its B matrices (scaled) stacked, so a layer's LoRA is
`((x @ A) * rows' mask) @ B`, two matmuls for the whole batch, where each row's mask keeps its own
adapter's rank columns (none for `__base__` rows). It is the same sum PEFT computes.
"""

from __future__ import annotations

import threading
from typing import Any


class MixedAdapterForward:
    """A `ContinuousBatch` forward for a PEFT model: row i of the batch runs adapter names[i]."""

    def __init__(self, peft_model: Any, *, fuse: bool = True) -> None:
        from peft.tuners.lora import LoraLayer

        self.model = peft_model
        self.base = peft_model.get_base_model()
        self._local = threading.local()
        self.persistent = not _has_auxiliary_modules(peft_model)
        self._handles: list[Any] = []
        self.fused: FusedLoRA | None = None
        if self.persistent:
            layers: list[Any] = [m for m in peft_model.modules() if isinstance(m, LoraLayer)]
            for module in layers:  # nn.Modules (LoraLayer itself is a mixin)
                self._handles.append(module.register_forward_pre_hook(self._inject, with_kwargs=True))
            if fuse and FusedLoRA.supports(layers):
                self.fused = FusedLoRA(layers)

    def _inject(self, module: Any, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        names = getattr(self._local, "names", None)
        if names is not None:
            kwargs["adapter_names"] = names
        return args, kwargs

    def __call__(self, names: list[str], **kwargs: Any) -> Any:
        if not self.persistent:
            return self.model(adapter_names=names, **kwargs)
        self._local.names = names
        if self.fused is not None:
            self.fused.begin(names)
        try:
            return self.base(**kwargs)
        finally:
            self._local.names = None

    def close(self) -> None:
        """Remove the hooks (the model then behaves as plain PEFT again)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self.fused is not None:
            self.fused.close()
            self.fused = None


class FusedLoRA:
    """Each LoRA layer's mixed-batch forward as two matmuls over all rows (see the module's docstring).

    Built from the adapters loaded at construction; `begin(names)` before each forward sets the rows'
    adapters. Installed as an instance attribute over PEFT's `_mixed_batch_forward`, so it runs only
    where PEFT would run its mixed-batch path (calls with `adapter_names`); `close` puts PEFT's back.
    """

    def __init__(self, layers: list[Any]) -> None:
        import torch

        self._layers = layers
        # Per thread (the server prefills on one thread while it decodes on another): the list `begin`
        # saw (the layers of one forward pass share it), its names and their masks.
        self._state = threading.local()
        for module in layers:
            adapters = [a for a in module.lora_A if a in module.lora_B]
            layout = tuple((a, int(module.lora_A[a].weight.shape[0])) for a in adapters)
            if not layout:
                continue
            a_all = torch.cat([module.lora_A[a].weight.detach().t() for a in adapters], dim=1).contiguous()
            b_all = torch.cat([module.lora_B[a].weight.detach().t() * float(module.scaling[a]) for a in adapters],
                              dim=0).contiguous()
            module._mixed_batch_forward = self._forward_of(module, layout, a_all, b_all)

    @staticmethod
    def supports(layers: list[Any]) -> bool:
        """Plain LoRA on linear layers only: no variant (DoRA, aLoRA), no LoRA bias, no other layer type."""
        from peft.tuners.lora.layer import Linear

        for module in layers:
            if type(module) is not Linear or getattr(module, "lora_variant", None):
                return False
            if any(getattr(module.lora_B[a], "bias", None) is not None for a in module.lora_B):
                return False
        return True

    def begin(self, names: list[str]) -> _Rows:
        """The rows' adapters for this thread's next forward (their masks are built once, then shared by
        the layers)."""
        rows: _Rows | None = getattr(self._state, "rows", None)
        if rows is None or tuple(names) != rows.names:
            rows = _Rows(tuple(names))
        rows.given = names
        self._state.rows = rows
        return rows

    def _forward_of(self, module: Any, layout: tuple[tuple[str, int], ...], a_all: Any, b_all: Any) -> Any:
        def forward(x: Any, *args: Any, adapter_names: list[str], **kwargs: Any) -> Any:
            kwargs.pop("alora_offsets", None)
            result = module.base_layer(x, *args, **kwargs)
            rows: _Rows | None = getattr(self._state, "rows", None)
            if rows is None or adapter_names is not rows.given:  # a call that did not come through `begin`
                rows = self.begin(adapter_names)
            mask = rows.mask(layout, a_all)
            if mask is None:  # only base rows
                return result
            hidden = x.to(a_all.dtype) @ a_all  # [rows, tokens, every adapter's rank]
            shape = (mask.shape[0],) + (1,) * (hidden.dim() - 2) + (mask.shape[1],)
            return result + ((hidden * mask.reshape(shape)) @ b_all).to(result.dtype)

        return forward

    def close(self) -> None:
        for module in self._layers:
            module.__dict__.pop("_mixed_batch_forward", None)


class _Rows:
    """One forward pass's row adapters and, per LoRA layout, the rank-column mask they give (None when
    no row uses any of the layout's adapters)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.given: list[str] | None = None
        self._masks: dict[tuple[tuple[str, int], ...], Any] = {}

    def mask(self, layout: tuple[tuple[str, int], ...], like: Any) -> Any:
        if layout in self._masks:
            return self._masks[layout]
        import torch

        mask = torch.zeros((len(self.names), sum(r for _, r in layout)), dtype=like.dtype)
        start = 0
        for adapter, rank in layout:
            rows = [i for i, n in enumerate(self.names) if n == adapter]
            if rows:
                mask[rows, start:start + rank] = 1.0
            start += rank
        self._masks[layout] = out = mask if mask.any() else None
        return out


def _has_auxiliary_modules(model: Any) -> bool:
    try:
        from peft.utils.other import AuxiliaryTrainingWrapper
    except ImportError:  # an older PEFT: take its own path
        return True
    return any(isinstance(m, AuxiliaryTrainingWrapper) for m in model.modules())
