"""Several 1-thread local teachers in worker processes: on a CPU, one decoding stream per core beats
one process with many threads (OpenMP threads wait on each other, worse still on a busy machine)."""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ..errors import SchemagenError
from .base import Completion, Prepared, Teacher

_WORKER: dict[str, Any] = {}


def _init(spec: str, dtype: str) -> None:
    import torch

    torch.set_num_threads(1)
    from .local import LocalTeacher

    _WORKER["teacher"] = LocalTeacher(spec, threads=1, dtype=dtype)
    _WORKER["prepared"] = None


def _prepare(schema_json: str, engine: str) -> Prepared:
    teacher = _WORKER["teacher"]
    if _WORKER["prepared"] != (schema_json, engine):
        prep = teacher.prepare(json.loads(schema_json), engine)
        _WORKER["prepared"] = (schema_json, engine)
        _WORKER["result"] = prep
    return _WORKER["result"]


def _complete(schema_json: str, engine: str, prompts: list[list[dict[str, str]]], temperature: float,
              max_new_tokens: int, seed: int) -> list[Completion]:
    _prepare(schema_json, engine)
    return _WORKER["teacher"].complete(prompts, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)


def _label(schema_json: str, engine: str, asks: list[tuple[list[dict[str, str]], str]], max_new_tokens: int,
           seed: int) -> list[Completion]:
    _prepare(schema_json, engine)
    return _WORKER["teacher"].label([p for p, _ in asks], [r for _, r in asks], max_new_tokens=max_new_tokens,
                                    seed=seed)


def _paraphrase(texts: list[str], temperature: float, max_new_tokens: int, seed: int) -> list[Completion | None]:
    return _WORKER["teacher"].paraphrase(texts, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)


def _describe() -> dict[str, Any]:
    return _WORKER["teacher"].describe()


def _result(future: Any) -> Any:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise SchemagenError(f"a teacher worker process died ({exc}); rerun to resume") from None


class PoolTeacher(Teacher):
    """`workers` processes, each a 1-thread LocalTeacher; a batch is split across them."""

    kind = "local"

    def __init__(self, spec: str, *, workers: int, dtype: str = "auto") -> None:
        super().__init__(spec)
        self.workers = workers
        ctx = mp.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                                        initargs=(spec, dtype))
        self._schema_json = ""
        self._engine = "auto"
        self._info: dict[str, Any] = {}

    def prepare(self, schema: dict[str, Any], engine: str = "auto") -> Prepared:
        self._schema_json = json.dumps(schema)
        prep: Prepared = _result(self.pool.submit(_prepare, self._schema_json, engine))
        self._engine = prep.engine  # every worker compiles the engine the first one chose
        self._info = _result(self.pool.submit(_describe))
        return prep

    def _spread(self, fn: Callable[..., Any], items: list[Any], head: tuple[Any, ...], tail: tuple[Any, ...], seed: int) -> list[Any]:
        """Split `items` across the workers, `fn(*head, chunk, *tail, seed)` in each; results in order."""
        k = max(1, min(self.workers, len(items)))
        size = -(-len(items) // k)
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        futures = [self.pool.submit(fn, *head, chunk, *tail, seed + 7919 * j) for j, chunk in enumerate(chunks)]
        out: list[Any] = []
        for f in futures:
            out.extend(_result(f))
        return out

    def complete(self, prompts: list[list[dict[str, str]]], *, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        return self._spread(_complete, prompts, (self._schema_json, self._engine), (temperature, max_new_tokens),
                            seed)

    def label(self, prompts: list[list[dict[str, str]]], requests: list[str], *, max_new_tokens: int,
              seed: int) -> list[Completion]:
        return self._spread(_label, list(zip(prompts, requests, strict=True)), (self._schema_json, self._engine),
                            (max_new_tokens,), seed)

    def paraphrase(self, texts: list[str], *, temperature: float, max_new_tokens: int,
                   seed: int) -> list[Completion | None]:
        return self._spread(_paraphrase, texts, (), (temperature, max_new_tokens), seed) if texts else []

    def describe(self) -> dict[str, Any]:
        return {**self._info, "workers": self.workers, "threads_per_worker": 1}

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
