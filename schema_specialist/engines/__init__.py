"""Constrained-decoding engines behind one interface, and the per-schema choice (`auto`)."""

from __future__ import annotations

from typing import Any

from . import llguidance, outlines_core, xgrammar  # noqa: F401  (self-registering)
from .base import ENGINES, Engine, EngineError, register_engine

__all__ = ["ENGINES", "Engine", "EngineError", "register_engine", "rank_engines", "EngineSet"]


def rank_engines(schema: dict[str, Any], names: list[str] | None = None) -> list[str]:
    """Engines for `schema`, best first: fewest rejected keywords, most enforced, cheapest mask."""
    candidates = [n for n in (names or list(ENGINES)) if ENGINES[n].available()]

    def score(name: str) -> tuple[int, int, int]:
        enforced, _, rejected = ENGINES[name].coverage(schema)
        return (len(rejected), -len(enforced), ENGINES[name].mask_rank)

    return sorted(candidates, key=score)


class EngineSet:
    """Engine instances for one outlines model, made lazily; picks and compiles per schema."""

    def __init__(self, outlines_model: Any) -> None:
        self.model = outlines_model
        self._engines: dict[str, Engine] = {}

    def get(self, name: str) -> Engine:
        if name not in ENGINES:
            raise EngineError(f"unknown engine {name!r} (choose from auto, {', '.join(ENGINES)})")
        if name not in self._engines:
            if not ENGINES[name].available():
                raise EngineError(f"engine {name!r} is not installed")
            self._engines[name] = ENGINES[name](self.model)
        return self._engines[name]

    def pick(self, schema: dict[str, Any], choice: str = "auto") -> tuple[str, Any, list[str]]:
        """(engine name, compiled processor, failures) for the best engine that compiles `schema`."""
        order = rank_engines(schema) if choice == "auto" else [choice]
        failures: list[str] = []
        for name in order:
            try:
                return name, self.get(name).processor(schema), failures
            except EngineError as exc:
                failures.append(str(exc))
        raise EngineError("no engine compiles the schema: " + "; ".join(failures))
