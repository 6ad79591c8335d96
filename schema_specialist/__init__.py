"""schemagen: turn any JSON Schema into a LoRA format specialist.

schema -> `generate` (dataset) -> `train` (adapter) -> `evaluate` (report); `Router` serves many adapters.
The library works without the CLI; heavy stages import torch only when called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from .errors import SchemagenError
from .schema import Schema, load_schema, schema_from_dict, schema_hash

__all__ = ["SchemagenError", "Schema", "load_schema", "schema_from_dict", "schema_hash", "generate",
           "GenerateConfig", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("generate", "GenerateConfig"):
        from . import generate as _g

        return getattr(_g, name)
    raise AttributeError(name)
