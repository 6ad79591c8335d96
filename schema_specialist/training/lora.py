"""LoRA helpers shared by the backends: rank checks and compute-dtype choice."""

from __future__ import annotations

from typing import Any

from ..errors import SchemagenError


def check_rank(model: Any, targets: list[str], rank: int) -> None:
    """Refuse target names that match no linear layer, and a rank above the smallest targeted dimension."""
    import torch

    smallest: tuple[int, str] | None = None
    found: set[str] = set()
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in targets and isinstance(module, torch.nn.Linear):
            found.add(leaf)
            dim = min(module.in_features, module.out_features)
            if smallest is None or dim < smallest[0]:
                smallest = (dim, leaf)
    missing = [t for t in targets if t not in found]
    if smallest is None or missing:
        raise SchemagenError(f"no linear layer named {', '.join(missing or targets)} in the base model "
                             "(check --target-modules)")
    if rank > smallest[0]:
        raise SchemagenError(f"LoRA rank {rank} is larger than the smallest targeted layer dimension "
                             f"({smallest[0]}, {smallest[1]}); use --lora-r <= {smallest[0]}")


def top_layers(model: Any, count: int) -> list[int] | None:
    """The indices of the last `count` decoder layers (None: every layer, when `count` is 0)."""
    if count == 0:
        return None
    total = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if not isinstance(total, int):
        raise SchemagenError("--lora-layers needs a model whose config names num_hidden_layers")
    if count > total:
        raise SchemagenError(f"--lora-layers {count} is more than the base model's {total} layers")
    return list(range(total - count, total))


def cpu_bf16_supported() -> bool:
    """Whether this CPU has native bf16 matmuls (avx512_bf16 / AMX) through oneDNN."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def compute_dtype(requested: str, device: str) -> str:
    """auto -> bfloat16 where the hardware has it, else float32 (float16 only when asked, on CUDA)."""
    import torch

    if requested != "auto":
        if requested == "float16" and device != "cuda":
            raise SchemagenError("--dtype float16 needs a CUDA GPU (use bfloat16 or float32 on CPU)")
        if requested == "bfloat16" and device == "cpu" and not cpu_bf16_supported():
            raise SchemagenError("this CPU has no native bf16 support (use --dtype float32)")
        return requested
    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_bf16_supported() else "float32"
