"""llguidance through outlines: enforces bounds; rejects uniqueItems, not and if/then/else."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

from .base import STRUCTURAL, Engine, EngineError, register_engine


@register_engine
class LLGuidanceEngine(Engine):
    name = "llguidance"
    mask_rank = 2
    enforces = STRUCTURAL | {
        "oneOf", "allOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "patternProperties",
        "minProperties", "maxProperties", "format", "format:date", "format:date-time", "format:time",
        "format:email", "format:uuid", "format:ipv4", "format:ipv6", "format:hostname", "format:duration",
    }
    rejects = frozenset({"uniqueItems", "not", "if", "then", "else"})

    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec("llguidance") is not None

    def __init__(self, outlines_model: Any) -> None:
        super().__init__(outlines_model)
        from outlines.backends.llguidance import LLGuidanceBackend

        self._backend = LLGuidanceBackend(outlines_model)

    def _compile(self, schema_json: str) -> Any:
        import llguidance as llg
        from outlines.backends.llguidance import LLGuidanceLogitsProcessor

        schema = json.loads(schema_json)
        if isinstance(schema, dict):
            schema = {**schema, "x-guidance": {"whitespace_flexible": False}}
        grammar = llg.grammar_from("json_schema", json.dumps(schema))
        is_error, messages = llg.LLMatcher.validate_grammar_with_warnings(grammar, self._backend.llg_tokenizer)
        if is_error:
            raise EngineError(f"llguidance cannot compile the schema: {'; '.join(messages)[:200]}")
        return LLGuidanceLogitsProcessor(grammar, self._backend.llg_tokenizer, self._backend.tensor_library_name)
