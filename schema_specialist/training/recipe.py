"""The training recipe: one dataclass holding every knob, its default and its help; config files."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SchemagenError

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SCHEDULES = ("cosine", "linear", "constant")
DTYPES = ("auto", "bfloat16", "float16", "float32")

# Axolotl's spellings of the same knobs, accepted in --config files.
ALIASES = {
    "base_model": "base", "learning_rate": "lr", "lr_scheduler": "schedule", "num_epochs": "epochs",
    "micro_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum", "sequence_len": "max_seq_len",
    "lora_target_modules": "target_modules", "early_stopping_patience": "patience", "save_steps": "checkpoint_every",
}


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class Recipe:
    """Every training knob; flag names are the field names with dashes (config keys may use either)."""

    base: str = _f("smollm2", "base model: 'smollm2' (embedded), a local model dir or an offline HF cache id")
    backend: str = _f("auto", "auto: unsloth with CUDA + the gpu extra, else peft", choices=("auto", "peft", "unsloth"))
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float = _f(0.0, "dropout on the LoRA input (0 skips a copy of every LoRA input: ~1.6x "
                                  "faster on CPU)")
    target_modules: str = _f(",".join(ALL_LINEAR), "comma-separated module names that get LoRA")
    lora_layers: int = _f(0, "LoRA only on the last N decoder layers, so the backward pass stops below them "
                             "(0: every layer)")
    lr: float = _f(2e-3, "peak learning rate (AdamW); 2e-3 beat 3e-4 within the same 120 steps on the dev "
                         "schema (docs/BENCHMARKS.md, bench_recipe_support_ticket)")
    schedule: str = _f("cosine", "learning-rate schedule after warmup", choices=SCHEDULES)
    warmup_ratio: float = _f(0.05, "fraction of the steps spent warming up linearly")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    neftune_alpha: float = _f(0.0, "NEFTune: uniform noise of scale alpha/sqrt(length*hidden) on the input "
                                   "embeddings while training (0: off; the paper uses 5)")
    max_grad_norm: float = _f(1.0, "clip the gradient norm (0: off)")
    epochs: int = _f(2, "passes over the training split (ignored when --max-steps > 0)")
    max_steps: int = _f(0, "stop after this many optimizer steps (0: use --epochs)")
    batch_size: int = _f(4, "examples per forward pass")
    grad_accum: int = _f(2, "forward passes per optimizer step")
    max_seq_len: int = _f(512, "longer examples are skipped, never truncated")
    pad_multiple: int = _f(32, "pad each batch's width up to a multiple of this: few distinct shapes, so the CPU "
                           "kernels cached per shape are reused and memory stays flat (1: off)")
    bucket_size: int = _f(8, "batches per length bucket (sort by length inside a bucket; 1: no bucketing)")
    patience: int = _f(2, "stop after this many epochs without a better val loss (0: never)")
    min_delta: float = _f(0.0, "a val loss must improve by more than this to count")
    checkpoint_every: int = _f(25, "checkpoint every K optimizer steps into <out>/checkpoints (0: off)")
    keep_checkpoints: int = _f(2, "how many checkpoints to keep")
    seed: int = _f(0, "seed for LoRA init, shuffling and dropout")
    dtype: str = _f("auto", "compute dtype: auto = bf16 autocast where the CPU/GPU supports it, else fp32",
                    choices=DTYPES)
    threads: int = _f(0, "torch CPU threads while training (0: all cores)")
    trim_heap: bool = _f(False, "on CPU, hand freed memory back to the system after every step: a flatter "
                                "resident size for speed (30 steps side by side: 3090 vs 3129 MB peak, 220 vs 332 "
                                "tok/s; the full demo 372 -> 399 tok/s untrimmed, another day; docs/BENCHMARKS.md)")

    def targets(self) -> list[str]:
        return [t.strip() for t in self.target_modules.split(",") if t.strip()]

    def check(self) -> None:
        """One-line errors for values that cannot work."""
        positive = ("lora_r", "lora_alpha", "batch_size", "grad_accum", "max_seq_len", "bucket_size",
                    "pad_multiple")
        for name in positive:
            if getattr(self, name) < 1:
                raise SchemagenError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        for name in ("epochs", "max_steps", "lora_layers", "neftune_alpha", "patience", "checkpoint_every", "threads",
                     "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise SchemagenError(f"--{name.replace('_', '-')} must not be negative")
        if self.epochs == 0 and self.max_steps == 0:
            raise SchemagenError("nothing to do: --epochs and --max-steps are both 0")
        if not 0 <= self.lora_dropout < 1:
            raise SchemagenError("--lora-dropout must be in [0, 1)")
        if not 0 <= self.warmup_ratio < 1:
            raise SchemagenError("--warmup-ratio must be in [0, 1)")
        if self.lr <= 0:
            raise SchemagenError("--lr must be positive")
        if not self.targets():
            raise SchemagenError("--target-modules is empty")
        for name in ("backend", "schedule", "dtype"):
            choices = fields_by_name()[name].metadata["choices"]
            if getattr(self, name) not in choices:
                raise SchemagenError(f"--{name} must be one of {', '.join(choices)} (got {getattr(self, name)!r})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fields_by_name() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(Recipe)}


# Knobs that do not change the trained weights: a resumed run may differ in these.
NON_TRAJECTORY = {"threads", "checkpoint_every", "keep_checkpoints", "backend", "trim_heap"}


def load_config(path: str | Path) -> dict[str, Any]:
    """A TOML, YAML or JSON file of recipe keys (dashes or underscores, axolotl aliases) -> field values."""
    p = Path(path)
    if not p.is_file():
        raise SchemagenError("no such config file", p)
    try:
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".toml":
            import tomllib

            raw: Any = tomllib.loads(text)
        elif p.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:  # the parsers raise their own types
        raise SchemagenError(f"cannot parse config: {' '.join(str(exc).split())[:200]}", p) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SchemagenError("a config must be a mapping of recipe keys", p)
    known = fields_by_name()
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        name = ALIASES.get(name, name)
        if name not in known:
            raise SchemagenError(f"unknown config key {key!r}", p)
        if name == "target_modules" and isinstance(value, list):
            value = ",".join(str(v) for v in value)
        out[name] = value
    return out


def make_recipe(values: dict[str, Any]) -> Recipe:
    """A checked Recipe from field values (types coerced to the field's default's type)."""
    known = fields_by_name()
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            raise SchemagenError(f"unknown recipe key {name!r}")
        default: Any = known[name].default
        if value is None and name == "base":
            value = "smollm2"
        try:
            kwargs[name] = type(default)(value) if not isinstance(default, bool) else bool(value)
        except (TypeError, ValueError):
            raise SchemagenError(f"{name}: expected {type(default).__name__}, got {value!r}") from None
    recipe = Recipe(**kwargs)
    recipe.check()
    return recipe
