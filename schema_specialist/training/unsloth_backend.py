"""Unsloth: 4-bit QLoRA on a CUDA GPU. `unsloth` raises at import without a GPU, so it is imported lazily."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SchemagenError
from .base import Backend, Prepared, cuda_available, register, unsloth_installed
from .lora import compute_dtype

if TYPE_CHECKING:
    from .recipe import Recipe

GPU_EXTRA = "install the gpu extra: pip install 'schemagen[gpu]'"


def why_not() -> str | None:
    """Why Unsloth cannot run here, or None."""
    if not cuda_available():
        return "it needs a CUDA GPU and none is visible (use --backend peft)"
    if not unsloth_installed():
        return f"unsloth is not installed ({GPU_EXTRA})"
    return None


def import_unsloth() -> Any:
    """`unsloth.FastLanguageModel`, with its import-time failures turned into one line."""
    reason = why_not()
    if reason:
        raise SchemagenError(f"unsloth: {reason}")
    try:
        from unsloth import FastLanguageModel
    except Exception as exc:  # unsloth raises NotImplementedError/ImportError for unsupported setups
        raise SchemagenError(f"unsloth failed to import: {' '.join(str(exc).split())[:200]}") from None
    return FastLanguageModel


def model_name(spec: str) -> tuple[str, Path]:
    """A local directory when the spec resolves offline, else the hub id itself (Unsloth downloads it)."""
    from ..models import resolve_model_path

    try:
        path = resolve_model_path(spec)
        return str(path), path
    except SchemagenError:
        if "/" in spec and not spec.startswith((".", "/")) and not Path(spec).exists():
            return spec, Path(spec)
        raise


@register
class UnslothBackend(Backend):
    name = "unsloth"
    description = "Unsloth FastLanguageModel, 4-bit QLoRA"

    @classmethod
    def unavailable(cls) -> str | None:
        return why_not()

    def prepare(self, recipe: Recipe) -> Prepared:
        import torch

        fast = import_unsloth()
        name, path = model_name(recipe.base)
        dtype = compute_dtype(recipe.dtype, "cuda")
        try:
            model, tokenizer = fast.from_pretrained(
                model_name=name, max_seq_length=recipe.max_seq_len, dtype=getattr(torch, dtype),
                load_in_4bit=True)
        except (OSError, ValueError) as exc:
            raise SchemagenError(f"cannot load model: {str(exc).splitlines()[0]}", name) from None
        from .lora import check_rank, top_layers

        check_rank(model, recipe.targets(), recipe.lora_r)
        model = fast.get_peft_model(
            model, r=recipe.lora_r, target_modules=recipe.targets(), lora_alpha=recipe.lora_alpha,
            layers_to_transform=top_layers(model, recipe.lora_layers),
            lora_dropout=recipe.lora_dropout, bias="none", use_gradient_checkpointing="unsloth",
            random_state=recipe.seed, max_seq_length=recipe.max_seq_len)
        fast.for_training(model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return Prepared(model, tokenizer, path, "cuda", dtype, f"Unsloth 4-bit QLoRA on cuda, {dtype} compute")


def export_gguf(adapter_dir: Path, out_dir: Path, quantization: str = "q4_k_m") -> None:
    """Merge an adapter and write GGUF through Unsloth's `save_pretrained_gguf` (CUDA + gpu extra only)."""
    reason = why_not()
    if reason:
        raise SchemagenError(f"--gguf needs Unsloth: {reason}; {GPU_EXTRA}")
    fast = import_unsloth()
    model, tokenizer = fast.from_pretrained(model_name=str(adapter_dir), load_in_4bit=False)
    model.save_pretrained_gguf(str(out_dir), tokenizer, quantization_method=quantization)
