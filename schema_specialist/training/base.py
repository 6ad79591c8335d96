"""The backend interface (load a base model and wrap it in LoRA) and the registry that picks one."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import SchemagenError

if TYPE_CHECKING:
    from .recipe import Recipe

BACKENDS: dict[str, type[Backend]] = {}


@dataclass
class Prepared:
    """A LoRA-wrapped, trainable model and what the loop needs to drive it."""

    model: Any
    tokenizer: Any
    base_path: Path
    device: str
    dtype: str  # compute dtype: "bfloat16", "float16" or "float32"
    note: str = ""  # one line for the log: how it was loaded


class Backend(ABC):
    """A way to load a base model for LoRA training; the training loop itself is shared."""

    name: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    @abstractmethod
    def unavailable(cls) -> str | None:
        """Why this backend cannot run here (one line), or None when it can."""

    @abstractmethod
    def prepare(self, recipe: Recipe) -> Prepared:
        """Load the base model named by `recipe.base` and add LoRA adapters per the recipe."""

    def save_adapter(self, model: Any, directory: Path) -> None:
        """Write adapter_config.json + adapter_model.safetensors (the PEFT layout vLLM reads)."""
        model.save_pretrained(str(directory), safe_serialization=True)


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make a backend selectable by its `name`."""
    BACKENDS[cls.name] = cls
    return cls


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - a broken torch install
        return False


def unsloth_installed() -> bool:
    """Whether the optional `gpu` extra is installed (found, not imported: it raises without a GPU)."""
    return importlib.util.find_spec("unsloth") is not None


def select_backend(requested: str = "auto") -> Backend:
    """`auto` -> unsloth when CUDA and the gpu extra are present, else peft; an explicit name is checked."""
    from . import peft_backend, unsloth_backend  # noqa: F401  (register the built-in backends)

    if requested == "auto":
        requested = "unsloth" if cuda_available() and unsloth_installed() else "peft"
    cls = BACKENDS.get(requested)
    if cls is None:
        raise SchemagenError(f"unknown backend {requested!r} (choose from auto, {', '.join(sorted(BACKENDS))})")
    reason = cls.unavailable()
    if reason:
        raise SchemagenError(f"backend {requested!r} cannot run here: {reason}")
    return cls()
