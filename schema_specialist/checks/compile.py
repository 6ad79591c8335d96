"""Compile a schema with each constraint engine, against the embedded SmolLM2 tokenizer (no weights)."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from ..errors import SchemagenError


@lru_cache(maxsize=1)
def outlines_model() -> Any:
    """An outlines `Transformers` model: the embedded tokenizer and a 1-layer stand-in on the meta device.

    The engine backends only read the tokenizer, so no weights are loaded or allocated.
    """
    try:
        import outlines
        import torch
        from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM
    except ImportError as exc:
        raise SchemagenError(f"compile checks need outlines, torch and transformers ({exc})") from None
    from ..models import embedded_dir

    tok = AutoTokenizer.from_pretrained(embedded_dir())
    config = MistralConfig(vocab_size=len(tok), hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                           num_attention_heads=1, num_key_value_heads=1)
    with torch.device("meta"):
        model = MistralForCausalLM(config)
    return outlines.from_transformers(model, tok)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def engine_set() -> Any:
    from ..engines import EngineSet

    return EngineSet(outlines_model())


def compile_all(schema: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
    """{engine: {"compiles": bool | None, "error": str | None, "seconds": float}} for each engine name.

    `compiles` is None when the engine could not be tried (not installed, no tokenizer).
    """
    from ..engines import ENGINES

    results: dict[str, dict[str, Any]] = {}
    try:
        engines = engine_set()
    except SchemagenError as exc:
        return {n: {"compiles": None, "error": _one_line(str(exc)), "seconds": 0.0} for n in names}
    except Exception as exc:  # a broken tokenizer export or library: skip the compile checks, say why
        return {n: {"compiles": None, "error": _one_line(f"{type(exc).__name__}: {exc}"), "seconds": 0.0}
                for n in names}
    for name in names:
        if name not in ENGINES or not ENGINES[name].available():
            results[name] = {"compiles": None, "error": "not installed", "seconds": 0.0}
            continue
        t0 = time.perf_counter()
        try:
            engine = engines.get(name)
            engine.processor(schema)
            results[name] = {"compiles": True, "error": None, "seconds": round(time.perf_counter() - t0, 4)}
        except SchemagenError as exc:
            text = str(exc).removeprefix(f"{name} cannot compile the schema: ")
            results[name] = {"compiles": False, "error": _one_line(text),
                             "seconds": round(time.perf_counter() - t0, 4)}
        except Exception as exc:  # an engine crashing on odd input is a finding, not a traceback
            results[name] = {"compiles": False, "error": _one_line(f"{type(exc).__name__}: {exc}"),
                             "seconds": round(time.perf_counter() - t0, 4)}
    return results


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
