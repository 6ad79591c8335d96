"""Export an adapter: merged safetensors model + tokenizer (PEFT), GGUF (Unsloth, GPU only), or a vLLM launch."""

from __future__ import annotations

import json
import shlex
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


# ---- vLLM: check that an adapter loads there, and print how to serve it ------------------------------

VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's `--max-lora-rank` choices
VLLM_LORA_MODULES = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})


def vllm_problems(config: dict[str, Any]) -> list[str]:
    """What in a PEFT `adapter_config.json` vLLM refuses (its `PEFTHelper.validate_legal`); [] when none."""
    problems = []
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        problems.append(f"peft_type {config.get('peft_type')!r} (vLLM serves LoRA only)")
    ranks = [config.get("r"), *(config.get("rank_pattern") or {}).values()]
    if not all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in ranks):
        problems.append(f"rank r={config.get('r')!r} is not a positive integer")
    elif max(ranks) > VLLM_MAX_LORA_RANKS[-1]:
        problems.append(f"rank {max(ranks)} is over vLLM's largest --max-lora-rank {VLLM_MAX_LORA_RANKS[-1]}")
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        problems.append(f"bias {config.get('bias')!r} (vLLM needs bias: none)")
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config.get('modules_to_save')!r} (vLLM needs none)")
    if config.get("use_dora"):
        problems.append("DoRA (use_dora: true; vLLM serves plain LoRA)")
    if config.get("fan_in_fan_out"):
        problems.append("fan_in_fan_out: true")
    targets = config.get("target_modules")
    if isinstance(targets, str):
        problems.append(f"target_modules is a regex {targets[:60]!r}: list the modules instead")
    elif isinstance(targets, list):
        odd = sorted(set(targets) - VLLM_LORA_MODULES)
        if odd:
            problems.append(f"target modules {', '.join(odd)} (vLLM's LoRA layers: {', '.join(sorted(VLLM_LORA_MODULES))})")
    return problems


def vllm_rank(rank: int) -> int:
    """The smallest `--max-lora-rank` choice that holds `rank` (vLLM pads smaller ranks)."""
    return next(r for r in VLLM_MAX_LORA_RANKS if r >= rank)


def _adapter_dirs(path: Path) -> list[Path]:
    if (path / "adapter_config.json").is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if (p / "adapter_config.json").is_file())
        if found:
            return found
    raise SchemagenError("not an adapter directory nor a registry of them (no adapter_config.json)", path)


def vllm_launch(adapter: str | Path, *, port: int = 8000) -> dict[str, Any]:
    """Check the adapter (or every adapter of a registry) for vLLM; the launch line and one request each.

    Raises SchemagenError naming every problem. The base is the directory the adapter was trained on
    (the embedded model is a local export, not the Hub checkpoint: serve that directory).
    """
    from ..prompts import TASK_SYSTEM

    dirs = _adapter_dirs(Path(adapter))
    modules, requests, problems, bases, ranks = [], [], [], set(), []
    for d in dirs:
        info = read_adapter_info(d)
        try:
            config = json.loads((d / "adapter_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemagenError(f"unreadable adapter_config.json: {exc}", d) from None
        found = vllm_problems(config if isinstance(config, dict) else {})
        if not (d / "adapter_model.safetensors").is_file():
            found.append("no adapter_model.safetensors")
        name = str(info.get("name") or d.name)
        problems += [f"{name}: {p}" for p in found]
        if found:
            continue
        ranks.append(max([config["r"], *(config.get("rank_pattern") or {}).values()]))
        base_path = str(info.get("base_model_path") or "")
        bases.add(base_path if base_path and Path(base_path).is_dir() else str(info.get("base_model") or ""))
        modules.append(f"{name}={d.resolve()}")
        system = info.get("system_prompt") if isinstance(info.get("system_prompt"), str) else TASK_SYSTEM
        requests.append({"model": name, "messages": [{"role": "system", "content": system},
                                                     {"role": "user", "content": "<the request>"}],
                         "response_format": {"type": "json_schema", "json_schema": {
                             "name": name, "schema": info.get("schema"), "strict": True}}})
    if problems:
        raise SchemagenError("vLLM cannot load it: " + "; ".join(problems), Path(adapter))
    if len(bases) != 1 or not next(iter(bases)):
        raise SchemagenError(f"the adapters name {len(bases)} different base models: vLLM serves one base",
                             Path(adapter))
    base = next(iter(bases))
    line = (f"vllm serve {shlex.quote(base)} --port {port} --enable-lora --max-lora-rank {vllm_rank(max(ranks))} "
            f"--max-loras {len(modules)} --lora-modules " + " ".join(shlex.quote(m) for m in modules))
    return {"base": base, "command": line, "requests": requests, "adapters": len(modules)}
