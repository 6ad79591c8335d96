"""transformers + PEFT: bf16 base weights and autocast where supported (fp32 LoRA weights); CPU or CUDA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Backend, Prepared, cuda_available, register
from .lora import check_rank, compute_dtype, top_layers

if TYPE_CHECKING:
    from .recipe import Recipe


def keep_input_dtype(model: Any) -> None:
    """Stop PEFT casting each LoRA layer's input to the adapter's fp32.

    Under autocast the LoRA matmuls run in the compute dtype anyway, so that cast only made an fp32 and
    then a bf16 copy of every input (q, k and v each their own), all kept for the backward pass. The
    loss and gradients are the same (tests/test_train.py); those copies are gone."""
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False


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
        # Frozen base weights in bf16 when computing in bf16 (half the memory, no per-step casts); the
        # LoRA weights stay fp32 (PEFT keeps adapters in fp32). fp16 keeps fp32 weights and a scaler.
        weights = "bfloat16" if dtype == "bfloat16" else "float32"
        from ..models import load_model

        loaded = load_model(recipe.base, dtype=weights)
        check_rank(loaded.model, recipe.targets(), recipe.lora_r)
        layers = top_layers(loaded.model, recipe.lora_layers)
        torch.manual_seed(recipe.seed)
        config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                            target_modules=recipe.targets(), layers_to_transform=layers, bias="none",
                            task_type="CAUSAL_LM")
        from ..quiet import quiet_libraries

        with quiet_libraries():  # PEFT's FutureWarnings on transformers' deprecated names
            model = get_peft_model(loaded.model, config)
        if dtype != "float32":
            keep_input_dtype(model)
        model.to(device)
        note = f"transformers + PEFT on {device}, {'bf16' if weights == 'bfloat16' else 'fp32'} base weights, " \
               f"{dtype} compute"
        return Prepared(model, loaded.tokenizer, loaded.path, device, dtype, note)
