"""`train --resume-from ADAPTER`: start the LoRA weights from a trained adapter instead of from scratch.

Distinct from resuming an interrupted run (`checkpoints/`, which also restores the optimizer and the
position in the data): this starts a new run, with a fresh optimizer and schedule, on a dataset that may
have grown (a `generate --focus` round), from the adapter's weights. The adapter must fit: the same base
model, LoRA rank, alpha, target modules and layers (`--lora-layers`), and the same schema. Where the command line does not set
those knobs, they come from the adapter (`recipe_defaults`); an unset learning rate is `RESUME_LR`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SchemagenError

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
# The peak learning rate of a resumed run where none is given. A focus round resumed at the from-scratch
# rate (2e-3) undid part of the first run (failures 117 -> 194 at n=3000); at this rate it lowered them
# (docs/BENCHMARKS.md, bench_reliability_focus_lr).
RESUME_LR = 3e-4


@dataclass
class WarmStart:
    """A trained adapter to start from: where it is, what it was trained with, its weights' digest."""

    path: Path
    info: dict[str, Any]
    config: dict[str, Any]
    sha256: str

    def recipe_defaults(self) -> dict[str, Any]:
        """The recipe values the adapter was trained with that a resumed run must share."""
        targets = self.config.get("target_modules") or (self.info.get("hyperparameters") or {}).get(
            "target_modules") or []
        out: dict[str, Any] = {"base": self.info.get("base_model"), "lora_r": self.config.get("r"),
                               "lora_alpha": self.config.get("lora_alpha"),
                               "target_modules": ",".join(sorted(targets)) if isinstance(targets, list) else targets,
                               "lora_layers": self.lora_layers()}
        return {k: v for k, v in out.items() if v is not None}

    def lora_layers(self) -> int | None:
        """How many layers carry LoRA (0: every one), from PEFT's `layers_to_transform` (None: not said)."""
        if "layers_to_transform" not in self.config:
            return None
        layers = self.config["layers_to_transform"]
        return len(layers) if isinstance(layers, list) else 1 if isinstance(layers, int) else 0

    def check(self, recipe: Any, base_path: Path, schema_sha256: str) -> None:
        """One-line errors where this run's recipe, base model or schema differ from the adapter's."""
        where = self.path
        if self.info.get("schema_sha256") != schema_sha256:
            raise SchemagenError("was trained for another schema than this dataset's; --resume-from needs the "
                                 "same schema", where)
        old_base = self.info.get("base_model_path")
        if old_base and Path(old_base).resolve() != Path(base_path).resolve():
            raise SchemagenError(f"was trained on base model {old_base}, not {base_path}; --resume-from needs "
                                 "the same --base", where)
        mine = {"r": recipe.lora_r, "lora_alpha": recipe.lora_alpha}
        for key, flag in (("r", "--lora-r"), ("lora_alpha", "--lora-alpha")):
            if self.config.get(key) is not None and self.config[key] != mine[key]:
                raise SchemagenError(f"has LoRA {key} {self.config[key]}, not {flag} {mine[key]}; --resume-from "
                                     "needs the same", where)
        layers = self.lora_layers()
        if layers is not None and layers != recipe.lora_layers:
            raise SchemagenError(f"has LoRA on {'every layer' if layers == 0 else f'its last {layers} layers'}, not "
                                 f"--lora-layers {recipe.lora_layers}; --resume-from needs the same", where)
        targets = self.config.get("target_modules")
        if isinstance(targets, list) and sorted(targets) != sorted(recipe.targets()):
            raise SchemagenError(f"targets {','.join(sorted(targets))}, not --target-modules "
                                 f"{','.join(sorted(recipe.targets()))}; --resume-from needs the same", where)

    def load_into(self, model: Any) -> None:
        """Copy the adapter's LoRA weights into a freshly wrapped PEFT model (every one must fit)."""
        from peft import get_peft_model_state_dict, set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(self.path / WEIGHTS))
        expected = get_peft_model_state_dict(model)
        if set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in weights):
            odd = sorted(set(weights) ^ set(expected)) or [k for k in weights if weights[k].shape != expected[k].shape]
            raise SchemagenError(f"its weights do not fit this model ({odd[0]})", self.path / WEIGHTS)
        set_peft_model_state_dict(model, weights)

    def describe(self) -> dict[str, Any]:
        metrics = self.info.get("metrics") or {}
        return {"path": str(self.path.resolve()), "weights_sha256": self.sha256, "name": self.info.get("name"),
                "steps": metrics.get("steps"), "dataset": (self.info.get("dataset") or {}).get("path")}


def read_warm_start(adapter_dir: str | Path) -> WarmStart:
    """The adapter to start from (one-line errors when it is not a complete schemagen adapter)."""
    from .api import read_adapter_info

    path = Path(adapter_dir)
    info = read_adapter_info(path)
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise SchemagenError(f"not a complete adapter (no {name})", path)
    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemagenError(f"unreadable: {exc}", path / CONFIG) from None
    sha = hashlib.sha256((path / WEIGHTS).read_bytes()).hexdigest()
    return WarmStart(path, info, config if isinstance(config, dict) else {}, sha)
