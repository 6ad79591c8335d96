"""The teacher interface: write JSON completions for chat prompts under a schema's constraints."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import SchemagenError


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Prepared:
    """What a teacher decided for a schema: the engine, its compile time, engines that failed."""

    engine: str
    compile_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


class Teacher(ABC):
    """Writes instances of a schema; `prepare` once per schema, then `complete` batches."""

    kind: ClassVar[str]

    def __init__(self, spec: str) -> None:
        self.spec = spec

    @abstractmethod
    def prepare(self, schema: dict[str, Any], engine: str = "auto") -> Prepared:
        """Compile (or register) the decoding schema; raises SchemagenError when impossible."""

    @abstractmethod
    def complete(self, prompts: list[list[dict[str, str]]], *, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        """One completion a prompt, constrained to the prepared schema."""

    def label(self, prompts: list[list[dict[str, str]]], requests: list[str], *, max_new_tokens: int,
              seed: int) -> list[Completion]:
        """Greedy answers to the user's requests (`prompts[i]` asks `requests[i]`) under the prepared
        schema. A teacher with a grammar a row grounds each answer's free-text strings and numbers in its request
        (`generate.grounding`); this default decodes under the schema alone (a remote teacher: its
        answers are judged for grounding afterwards)."""
        return self.complete(prompts, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed)

    def paraphrase(self, texts: list[str], *, temperature: float, max_new_tokens: int,
                   seed: int) -> list[Completion | None]:
        """A free rewrite of each request (`prompts.paraphrase_messages`), no grammar; None where this
        teacher cannot (the default). The caller checks every rewrite for faithfulness."""
        return [None] * len(texts)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "spec": self.spec}

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release workers or connections (nothing by default)."""


TEACHERS: dict[str, type[Teacher]] = {}


def register_teacher(cls: type[Teacher]) -> type[Teacher]:
    TEACHERS[cls.kind] = cls
    return cls


def make_teacher(spec: str | None, **options: Any) -> Teacher:
    """`openai:URL#model` -> an HTTP teacher; anything else (default `smollm2`) -> a local model."""
    spec = spec or "smollm2"
    kind, sep, rest = spec.partition(":")
    if sep and kind in TEACHERS and kind != "local":
        options.pop("workers", None)
        return TEACHERS[kind](rest, **options)
    if sep and kind not in TEACHERS and "/" not in kind and len(kind) > 1 and not kind.startswith("."):
        raise SchemagenError(f"bad --teacher {spec!r}: unknown kind {kind!r} (use a model path, "
                             f"'smollm2', or openai:URL#model)")
    workers = int(options.pop("workers", 1) or 1)
    if workers > 1:
        from ..models import resolve_model_path
        from .pool import PoolTeacher

        resolve_model_path(spec)  # a missing model is a one-line error here, not a dead worker

        return PoolTeacher(spec, workers=workers, dtype=options.get("dtype", "auto"))
    return TEACHERS["local"](spec, **options)
