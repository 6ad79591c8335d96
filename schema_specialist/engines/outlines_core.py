"""outlines-core (regex index) through outlines: ignores numeric bounds and uniqueItems."""

from __future__ import annotations

import importlib.util
from typing import Any

from .base import STRUCTURAL, Engine, register_engine


@register_engine
class OutlinesCoreEngine(Engine):
    name = "outlines_core"
    mask_rank = 1
    slow_compile = True  # a regex index over the vocabulary: bounded strings take seconds to minutes
    # `oneOf` compiles as an alternation, i.e. anyOf: validation enforces the exactly-one part.
    enforces = STRUCTURAL | {"format:date", "format:date-time", "format:time", "format:uuid",
                             "format:email", "format:uri"}
    rejects = frozenset({"allOf", "patternProperties", "pattern:lookaround", "pattern:backref"})
    formats = frozenset({"date", "date-time", "time", "uuid", "email", "uri"})

    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec("outlines_core") is not None

    def __init__(self, outlines_model: Any) -> None:
        super().__init__(outlines_model)
        from outlines.backends.outlines_core import OutlinesCoreBackend

        self._backend = OutlinesCoreBackend(outlines_model)

    def _compile(self, schema_json: str) -> Any:
        return self._backend.get_json_schema_logits_processor(schema_json, whitespace_pattern="")
