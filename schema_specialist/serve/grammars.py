"""Per-row grammar matchers for request schemas, compiled once per schema and cached.

The server decodes every row in one batch (`continuous.ContinuousBatch`), so only engines with a
per-row matcher serve here (llguidance, xgrammar); `outlines_core` has none. The grammar is the
narrowed decoding schema that `generate` uses (strings and arrays capped where the schema leaves
room), so a small model stops in time; every answer is still validated against the original schema.
`Grammars.grounded` is `get`'s grammar with its free-text strings and numbers grounded in one request
(`generate.grounding`), compiled the first time a row needs it (on the prefill side), not kept after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SchemagenError
from ..schema import Schema

ROW_ENGINES = ("llguidance", "xgrammar")
_CACHE = 256


@dataclass
class Grammar:
    """A compiled schema: the engine that compiled it and a factory of fresh per-row matchers."""

    engine: str
    rows: Callable[[], Any]
    dropped: tuple[str, ...] = ()  # keywords the engine could not compile, taken out of its grammar


class _GroundedRows:
    """A row factory that compiles the grounded grammar on first use; the plain one if that fails."""

    def __init__(self, grammars: Grammars, schema: Schema, text: str, plain: Grammar) -> None:
        self._grammars, self._schema, self._text, self._plain = grammars, schema, text, plain
        self._rows: Callable[[], Any] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._rows is None:
                self._rows = self._grammars._compile_grounded(self._schema, self._text, self._plain)
        return self._rows()


class Grammars:
    """Compiles request schemas for one model's tokenizer; thread-safe, cached by schema hash."""

    def __init__(self, hf_model: Any, tokenizer: Any) -> None:
        self._model, self._tokenizer = hf_model, tokenizer
        self._engines: Any = None
        self._cache: dict[str, Grammar] = {}
        self._lock = threading.Lock()

    def get(self, schema: Schema) -> Grammar:
        """The grammar for `schema`; raises SchemagenError when no row engine compiles it."""
        return self._cached(schema, capped=False)

    def capped(self, schema: Schema) -> Grammar:
        """The capped grammar for `schema`: `generate`'s decoding schema, whose strings and lists end within
        a small model's token budget (for an answer that ran out of tokens under `get`'s)."""
        return self._cached(schema, capped=True)

    def grounded(self, schema: Schema, text: str) -> Grammar:
        """`get`'s grammar with free-text strings that can only copy runs of `text` and numbers that `text`
        writes (compiled lazily)."""
        plain = self.get(schema)
        return Grammar(plain.engine, _GroundedRows(self, schema, text, plain), plain.dropped)

    def _compile_grounded(self, schema: Schema, text: str, plain: Grammar) -> Callable[[], Any]:
        from ..engines import grounded_rows
        from ..generate.grammar import answer_schema

        rows = grounded_rows(self._engines, plain.engine, plain.dropped, answer_schema(schema), text)
        return rows if rows is not None else plain.rows

    def _cached(self, schema: Schema, *, capped: bool) -> Grammar:
        key = schema.sha256 + (":capped" if capped else "")
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                hit = self._compile(schema, capped)
                if len(self._cache) >= _CACHE:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = hit
        return hit

    def _compile(self, schema: Schema, capped: bool = False) -> Grammar:
        # before `engines`: the generate package imports it
        from ..generate.grammar import answer_schema, decoding_schema

        if self._engines is None:
            import outlines

            from ..engines import EngineSet

            self._engines = EngineSet(outlines.from_transformers(self._model, self._tokenizer))
        from ..engines import EngineError, rank_engines

        narrowed = decoding_schema(schema) if capped else answer_schema(schema)
        failures: list[str] = []
        for name in [n for n in rank_engines(narrowed) if n in ROW_ENGINES]:
            try:
                engine, processor, _ = self._engines.pick(narrowed, name)
            except EngineError as exc:
                failures.append(str(exc))
                continue
            rows = self._engines.get(engine).row_constraint(processor)
            if rows is not None:
                last = self._engines.last
                return Grammar(engine, rows, tuple(last.dropped) if last is not None else ())
        why = "; ".join(failures)[:300] or "no llguidance or xgrammar installed"
        raise SchemagenError(f"no engine with a per-row matcher compiles the schema: {why}")
