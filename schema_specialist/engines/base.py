"""The constrained-decoding engine interface and its registry (one registered class per engine)."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import SchemagenError
from ..generate.grammar import keywords
from ..schema import schema_hash

if TYPE_CHECKING:
    from ..generate.decoding import RowConstraint

# Structure every engine turns into grammar.
STRUCTURAL = frozenset({
    "type", "properties", "required", "items", "enum", "const", "anyOf", "$ref", "$defs", "definitions",
    "additionalProperties", "minItems", "maxItems", "minLength", "maxLength", "pattern", "prefixItems",
    "title", "description", "$schema", "$id", "default", "examples", "$comment",
})
ANNOTATIONS = frozenset({"title", "description", "$schema", "$id", "default", "examples", "$comment",
                         "readOnly", "writeOnly", "deprecated", "$anchor", "contentMediaType", "contentEncoding"})


class EngineError(SchemagenError):
    """An engine cannot compile a schema."""


class Engine(ABC):
    """A grammar engine behind outlines: compile a schema once, hand out logits processors."""

    name: ClassVar[str]
    enforces: ClassVar[frozenset[str]]  # keywords the grammar enforces while decoding
    # Keywords (and `pattern:<feature>` regex features) known to make compilation fail: `pick`
    # takes them out of the decoding schema for this engine (`grammar.simplify`), validation enforces them.
    rejects: ClassVar[frozenset[str]] = frozenset()
    formats: ClassVar[frozenset[str] | None] = None  # formats it compiles; None = any (unknown ones ignored)
    mask_rank: ClassVar[int] = 0  # lower = cheaper mask per token; breaks ties in `auto`
    slow_compile: ClassVar[bool] = False  # compile can take minutes on real schemas: `auto` tries it last
    fidelity: ClassVar[int] = 0  # how exactly its grammar follows what it compiles; `auto` prefers higher

    def __init__(self, outlines_model: Any) -> None:
        self.model = outlines_model
        self._cache: dict[str, Any] = {}
        self.compile_seconds: dict[str, float] = {}

    @classmethod
    def available(cls) -> bool:
        """Whether the engine's package imports here."""
        return True

    def processor(self, schema: dict[str, Any], *, cache: bool = True) -> Any:
        """A logits processor for `schema`, compiled once per schema and cached (`cache=False`: a grammar
        made for one request, compiled and not kept)."""
        key = schema_hash(schema)
        if key in self._cache:
            return self._cache[key]
        t0 = time.perf_counter()
        try:
            compiled = self._compile(json.dumps(schema))
        except EngineError:
            raise
        except Exception as exc:  # engines raise many types; all mean "cannot compile"
            raise EngineError(f"{self.name} cannot compile the schema: {_first_line(exc)}") from None
        if cache:
            self._cache[key] = compiled
            self.compile_seconds[key] = time.perf_counter() - t0
        return compiled

    @abstractmethod
    def _compile(self, schema_json: str) -> Any:
        """Compile and return a fresh outlines logits processor."""

    def row_constraint(self, processor: Any) -> Callable[[], RowConstraint] | None:
        """A factory of per-row matchers for `decoding.decode`, from a compiled processor; None when the
        engine has none (then decoding goes through outlines and `transformers.generate`)."""
        return None

    @classmethod
    def coverage(cls, schema: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
        """(enforced, not enforced, rejected) keywords of `schema` for this engine."""
        used = {k for k in keywords(schema) if k not in ANNOTATIONS}
        rejected = used & cls.rejects
        if cls.formats is not None:
            rejected |= {k for k in used if k.startswith("format:") and k[7:] not in cls.formats}
        enforced = (used & cls.enforces) - rejected
        return enforced, used - enforced - rejected, rejected


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


ENGINES: dict[str, type[Engine]] = {}


def register_engine(cls: type[Engine]) -> type[Engine]:
    """Class decorator: make an engine selectable by name."""
    ENGINES[cls.name] = cls
    return cls
