"""Constrained-decoding engines behind one interface, and the per-schema choice (`auto`).

`EngineSet.pick` tries engines best first; for each it compiles the schema with the engine's
rejected keywords taken out (`grammar.simplify`), then, if that still fails, with every keyword that
validation can enforce instead taken out; then it moves to the next engine. Loosening the grammar is
safe because every candidate is validated against the original schema.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from ..generate.grammar import LOOSENABLE, keywords, simplify
from . import llguidance, outlines_core, xgrammar  # noqa: F401  (self-registering)
from .base import ENGINES, Engine, EngineError, register_engine

__all__ = ["ENGINES", "Engine", "EngineError", "register_engine", "rank_engines", "EngineSet", "Pick",
           "loosening_ladder"]


def rank_engines(schema: dict[str, Any], names: list[str] | None = None) -> list[str]:
    """Engines for `schema`, best first: fast compile, fidelity, fewest rejected keywords, most enforced,
    cheapest mask. Rejected keywords only break ties: `pick` takes them out and validation enforces them,
    which is what an engine that silently ignores a keyword amounts to."""
    candidates = [n for n in (names or list(ENGINES)) if ENGINES[n].available()]

    def score(name: str) -> tuple[bool, int, int, int, int]:
        engine = ENGINES[name]
        enforced, _, rejected = engine.coverage(schema)
        return (engine.slow_compile, -engine.fidelity, len(rejected), -len(enforced), engine.mask_rank)

    return sorted(candidates, key=score)


def loosening_ladder(schema: dict[str, Any], engine: type[Engine]) -> list[frozenset[str]]:
    """The keyword sets to take out before compiling, tightest grammar first (at most two steps)."""
    _, _, rejected = engine.coverage(schema)
    first = frozenset(rejected)
    used = keywords(schema)
    everything = first | (used & LOOSENABLE) | {k for k in used if k.startswith(("format:", "pattern:"))}
    return [first] if everything == first else [first, frozenset(everything)]


@dataclass
class Pick:
    """What `pick` chose: the engine, the keywords it took out, the compile times."""

    engine: str
    dropped: list[str] = field(default_factory=list)
    compile_seconds: float = 0.0  # the compile that succeeded
    total_seconds: float = 0.0  # every attempt, failed ones included
    attempts: int = 1


class EngineSet:
    """Engine instances for one outlines model, made lazily; picks and compiles per schema."""

    def __init__(self, outlines_model: Any) -> None:
        self.model = outlines_model
        self._engines: dict[str, Engine] = {}
        self.last: Pick | None = None

    def get(self, name: str) -> Engine:
        if name not in ENGINES:
            raise EngineError(f"unknown engine {name!r} (choose from auto, {', '.join(ENGINES)})")
        if name not in self._engines:
            if not ENGINES[name].available():
                raise EngineError(f"engine {name!r} is not installed")
            self._engines[name] = ENGINES[name](self.model)
        return self._engines[name]

    def pick(self, schema: dict[str, Any], choice: str = "auto", *, loosen: bool = True) -> tuple[str, Any, list[str]]:
        """(engine name, compiled processor, failures) for the best engine that compiles `schema`.

        With `loosen`, keywords an engine cannot compile are taken out of its grammar first (see the
        module docstring); `self.last` records what was dropped and the compile times.
        """
        order = rank_engines(schema) if choice == "auto" else [choice]
        failures: list[str] = []
        started = time.perf_counter()
        attempts = 0
        for name in order:
            try:
                engine = self.get(name)
            except EngineError as exc:
                failures.append(str(exc))
                continue
            steps = loosening_ladder(schema, type(engine)) if loosen else [frozenset()]
            for drop in steps:
                attempts += 1
                t0 = time.perf_counter()
                try:
                    processor = engine.processor(simplify(schema, drop))
                except EngineError as exc:
                    failures.append(str(exc) + (f" (with {', '.join(sorted(drop))} taken out)" if drop else ""))
                    continue
                now = time.perf_counter()
                self.last = Pick(name, sorted(drop), now - t0, now - started, attempts)
                return name, processor, failures
        raise EngineError("no engine compiles the schema: " + "; ".join(failures))


def grounded_rows(engines: EngineSet, engine: str, dropped: Collection[str], schema: dict[str, Any],
                  text: str, *, numbers: bool = True) -> Callable[[], Any] | None:
    """A row-matcher factory for `schema` with its free-text strings and numbers grounded in `text`
    (`generate.grounding`), compiled as the plain grammar was (the same engine, the same keywords taken
    out; strings stay free where `pattern` was taken out; numbers free unless `numbers`) and not cached;
    None when grounding changes nothing or it fails."""
    from ..generate.grounding import ground

    grounded = ground(schema, text, strings="pattern" not in dropped, numbers=numbers)
    if grounded is schema:
        return None
    try:
        made = engines.get(engine)
        return made.row_constraint(made.processor(simplify(grounded, frozenset(dropped)), cache=False))
    except EngineError:
        return None
