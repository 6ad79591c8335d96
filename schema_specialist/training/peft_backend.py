"""transformers + PEFT: fp32 master weights, bf16 autocast where supported; CPU or CUDA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Backend, Prepared, cuda_available, register
from .lora import check_rank, compute_dtype

if TYPE_CHECKING:
    from .recipe import Recipe


def quiet_load(spec: str) -> Any:
    """`models.load_model` in fp32 without transformers' per-load progress bar."""
    from transformers.utils import logging as hf_logging

    from ..models import load_model

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load_model(spec, dtype="float32")
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@register
class PeftBackend(Backend):
    name = "peft"
    description = "transformers + PEFT LoRA"

    @classmethod
    def unavailable(cls) -> str | None:
        return None

    def prepare(self, recipe: Recipe) -> Prepared:
        import torch
        from peft import LoraConfig, get_peft_model

        device = "cuda" if cuda_available() else "cpu"
        dtype = compute_dtype(recipe.dtype, device)
        loaded = quiet_load(recipe.base)
        check_rank(loaded.model, recipe.targets(), recipe.lora_r)
        torch.manual_seed(recipe.seed)
        config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                            target_modules=recipe.targets(), bias="none", task_type="CAUSAL_LM")
        model = get_peft_model(loaded.model, config)
        model.to(device)
        note = f"transformers + PEFT on {device}, fp32 weights, {dtype} compute"
        return Prepared(model, loaded.tokenizer, loaded.path, device, dtype, note)
