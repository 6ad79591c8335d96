"""llguidance through outlines: enforces bounds and allOf; rejects uniqueItems, not, if/then/else, contains.

`oneOf` is compiled as `anyOf` (`coerce_one_of`): validation enforces the exactly-one part.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .base import STRUCTURAL, Engine, EngineError, register_engine

if TYPE_CHECKING:
    from ..generate.decoding import RowConstraint


@register_engine
class LLGuidanceEngine(Engine):
    name = "llguidance"
    mask_rank = 2
    # Exact where it compiles: regexes (with lengths), anyOf/required beside properties, decimal
    # multipleOf; the most compliant engine in JSONSchemaBench; compiles in milliseconds.
    fidelity = 2
    enforces = STRUCTURAL | {
        "allOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "patternProperties", "multipleOf",
        "minProperties", "maxProperties", "format", "format:date", "format:date-time", "format:time",
        "format:email", "format:uuid", "format:ipv4", "format:ipv6", "format:hostname", "format:duration",
        "format:uri",
    }
    rejects = frozenset({
        "uniqueItems", "not", "if", "then", "else", "propertyNames", "contains", "minContains", "maxContains",
        "dependencies", "dependentRequired", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems",
        "pattern:lookaround", "pattern:backref",
    })
    formats = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid",
                         "uri"})

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
            schema = {**schema, "x-guidance": {"whitespace_flexible": False, "coerce_one_of": True}}
        grammar = llg.grammar_from("json_schema", json.dumps(schema))
        is_error, messages = llg.LLMatcher.validate_grammar_with_warnings(grammar, self._backend.llg_tokenizer)
        if is_error:
            raise EngineError(f"llguidance cannot compile the schema: {'; '.join(messages)[:200]}")
        # Build one matcher now: the lexer and parser tables are made here, so errors (and the cost)
        # show at compile time, not in the middle of a batch.
        matcher = llg.LLMatcher(self._backend.llg_tokenizer, grammar)
        if matcher.is_error():
            raise EngineError(f"llguidance cannot compile the schema: {matcher.get_error()[:200]}")
        return LLGuidanceLogitsProcessor(grammar, self._backend.llg_tokenizer, self._backend.tensor_library_name)

    def row_constraint(self, processor: Any) -> Callable[[], RowConstraint]:
        grammar, tokenizer = processor.grammar, processor.llg_tokenizer
        return lambda: _LLGRow(tokenizer, grammar)


class _LLGRow:
    """One llguidance matcher: fills its row of the shared bitmask, consumes the chosen token."""

    def __init__(self, tokenizer: Any, grammar: str) -> None:
        import llguidance as llg

        self.matcher = llg.LLMatcher(tokenizer, grammar)

    def fill(self, bitmask: Any, row: int) -> None:
        import llguidance.torch

        llguidance.torch.fill_next_token_bitmask(self.matcher, bitmask, row)

    def accept(self, token: int) -> bool:
        return bool(self.matcher.consume_token(token))

    def finished(self) -> bool:
        return bool(self.matcher.is_stopped())
