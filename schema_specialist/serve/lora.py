"""Mixed-adapter forward passes: PEFT's per-row `adapter_names`, with the hooks installed once.

`PeftModel(..., adapter_names=names)` walks every module and registers a pre-forward hook on each
LoRA layer on every call (about 10 ms a step for a 135M model with LoRA on all 7 projections, as
much as a whole bf16 decoding step of one row). Here one hook a LoRA layer is registered once and
reads the step's names from a holder; the LoRA layers then run PEFT's own mixed-batch forward
(`adapter_names` -> one sub-batch per adapter, `__base__` rows skip LoRA). Models with wrapped
auxiliary modules (`modules_to_save`) keep PEFT's own per-call path, which routes those too.
"""

from __future__ import annotations

import threading
from typing import Any


class MixedAdapterForward:
    """A `ContinuousBatch` forward for a PEFT model: row i of the batch runs adapter names[i]."""

    def __init__(self, peft_model: Any) -> None:
        from peft.tuners.lora import LoraLayer

        self.model = peft_model
        self.base = peft_model.get_base_model()
        self._local = threading.local()
        self.persistent = not _has_auxiliary_modules(peft_model)
        self._handles: list[Any] = []
        if self.persistent:
            layers: list[Any] = [m for m in peft_model.modules() if isinstance(m, LoraLayer)]
            for module in layers:  # nn.Modules (LoraLayer itself is a mixin)
                self._handles.append(module.register_forward_pre_hook(self._inject, with_kwargs=True))

    def _inject(self, module: Any, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        names = getattr(self._local, "names", None)
        if names is not None:
            kwargs["adapter_names"] = names
        return args, kwargs

    def __call__(self, names: list[str], **kwargs: Any) -> Any:
        if not self.persistent:
            return self.model(adapter_names=names, **kwargs)
        self._local.names = names
        try:
            return self.base(**kwargs)
        finally:
            self._local.names = None

    def close(self) -> None:
        """Remove the hooks (the model then behaves as plain PEFT again)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _has_auxiliary_modules(model: Any) -> bool:
    try:
        from peft.utils.other import AuxiliaryTrainingWrapper
    except ImportError:  # an older PEFT: take its own path
        return True
    return any(isinstance(m, AuxiliaryTrainingWrapper) for m in model.modules())
