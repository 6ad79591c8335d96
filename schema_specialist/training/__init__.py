"""Train a LoRA format specialist: pluggable backends (PEFT on CPU/CUDA, Unsloth QLoRA on CUDA), one loop."""

from __future__ import annotations

from .api import read_adapter_info, train
from .base import BACKENDS, Backend, Prepared, register, select_backend
from .recipe import Recipe, load_config, make_recipe

__all__ = ["BACKENDS", "Backend", "Prepared", "Recipe", "load_config", "make_recipe", "read_adapter_info",
           "register", "select_backend", "train"]
