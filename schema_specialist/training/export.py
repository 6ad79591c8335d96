"""Export an adapter: merged safetensors model + tokenizer (PEFT), or GGUF (Unsloth, GPU only)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from .api import read_adapter_info
from .checkpoint import write_dir_atomically


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise SchemagenError("already exists (pass --overwrite to replace it)", out)


def export_merged(adapter_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Fold the LoRA weights into the base model (`merge_and_unload`) and save a plain model directory."""
    import torch
    from peft import PeftModel

    from ..models import load_model

    adapter, out = Path(adapter_dir), Path(out_dir)
    info = read_adapter_info(adapter)
    _check_target(out, overwrite)
    base = info.get("base_model_path") or info.get("base_model")
    if base and not Path(str(base)).exists():
        base = info.get("base_model")
    loaded = load_model(str(base) if base else None, dtype="float32")
    try:
        model = PeftModel.from_pretrained(loaded.model, str(adapter))
    except (OSError, ValueError, RuntimeError) as exc:
        raise SchemagenError(f"cannot load adapter: {str(exc).splitlines()[0]}", adapter) from None
    merged = model.merge_and_unload()
    merged.eval()

    def fill(tmp: Path) -> None:
        with torch.no_grad():
            merged.save_pretrained(str(tmp), safe_serialization=True)
        loaded.tokenizer.save_pretrained(str(tmp))
        shutil.copy2(adapter / "schemagen.json", tmp / "schemagen.json")

    write_dir_atomically(out, fill)
    return info


def export_gguf(adapter_dir: str | Path, out_dir: str | Path, *, quantization: str = "q4_k_m",
                overwrite: bool = False) -> dict[str, Any]:
    """GGUF through Unsloth's `save_pretrained_gguf`; a one-line error where Unsloth cannot run."""
    from .unsloth_backend import export_gguf as unsloth_gguf
    from .unsloth_backend import why_not

    adapter, out = Path(adapter_dir), Path(out_dir)
    info = read_adapter_info(adapter)
    reason = why_not()
    if reason:
        raise SchemagenError(f"--gguf needs the gpu extra (Unsloth on a CUDA GPU): {reason}; "
                             "use --merged for a safetensors model")
    _check_target(out, overwrite)
    write_dir_atomically(out, lambda tmp: unsloth_gguf(adapter, tmp, quantization))
    return info
