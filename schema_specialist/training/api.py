"""`train(dataset_dir, out_dir, **recipe)`: the library entry point behind `schemagen train`."""

from __future__ import annotations

import datetime as _dt
import json
import os
import resource
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..dataset import atomic_write_json
from ..errors import SchemagenError
from ..generate.decoding import pad_id_of
from ..prompts import TASK_SYSTEM
from ..review.decisions import review_note
from .base import select_backend
from .checkpoint import disk_errors, write_dir_atomically
from .data import encode_all, load_dataset
from .loop import Loop, State
from .memory import limit_heap_growth
from .recipe import NON_TRAJECTORY, Recipe, make_recipe
from .report import model_card, plot_loss
from .warm import read_warm_start

FORMAT = "schemagen-adapter/1"
# What `train`, `eval` and `scripts/bench_reliability.py` write into an adapter directory (eval.json,
# report/ and reliability/ stay through a retrain; eval notices the new weights and starts its answers again).
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "schemagen.json", "loss.png", "README.md",
                 "checkpoints", "eval.json", "report", "reliability"}


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse to clobber a trained adapter (without --overwrite) or a directory that is not ours."""
    if out.exists() and not out.is_dir():
        raise SchemagenError("exists and is not a directory", out)
    if not out.is_dir():
        return
    entries = {p.name for p in out.iterdir()}
    if entries - ADAPTER_FILES:
        raise SchemagenError("not empty and not a schemagen adapter directory (choose another -o)", out)
    if "schemagen.json" in entries and not overwrite:
        raise SchemagenError("already holds a trained adapter (pass --overwrite to retrain)", out)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def train(dataset_dir: str | Path, out_dir: str | Path | None = None, *, name: str | None = None,
          overwrite: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
          on_step: Callable[[State], None] | None = None, resume_from: str | Path | None = None,
          **recipe_values: Any) -> dict[str, Any]:
    """Train a LoRA specialist on a generated dataset; returns (and writes) the adapter's schemagen.json.

    `resume_from`: an adapter directory whose LoRA weights the run starts from (`warm`); without an
    `lr`, it trains at `warm.RESUME_LR`."""
    import torch

    say = log or _stderr
    if resume_from is not None and "lr" not in recipe_values:
        from .warm import RESUME_LR

        recipe_values = {**recipe_values, "lr": RESUME_LR}
    recipe = make_recipe(recipe_values)
    limit_heap_growth()
    ds = load_dataset(dataset_dir)
    if review_note(ds.review):
        say(str(review_note(ds.review)))
    name = name or ds.path.resolve().name
    out = Path(out_dir) if out_dir is not None else Path("adapters") / name
    warm = read_warm_start(resume_from) if resume_from is not None else None
    if warm is not None:
        if out.resolve() == warm.path.resolve():
            raise SchemagenError("is the adapter --resume-from starts from; write the new one elsewhere (-o)", out)
        from ..models import resolve_model_path

        warm.check(recipe, resolve_model_path(recipe.base), ds.schema_sha256)
    check_out_dir(out, overwrite)
    backend = select_backend(recipe.backend)
    old_threads = torch.get_num_threads()
    threads = recipe.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    try:
        prepared = backend.prepare(recipe)
        say(f"backend: {backend.name} ({prepared.note}), {threads} threads")
        if warm is not None:
            warm.load_into(prepared.model)
            say(f"LoRA weights from {warm.path} (sha256 {warm.sha256[:12]})")
        tok = prepared.tokenizer
        train_ex, skipped = encode_all(tok, ds.train, recipe.max_seq_len)
        val_ex, val_skipped = encode_all(tok, ds.val, recipe.max_seq_len)
        if not train_ex:
            raise SchemagenError(f"every training example is longer than --max-seq-len {recipe.max_seq_len}",
                                 ds.path / "train.jsonl")
        if skipped or val_skipped:
            say(f"skipped {skipped} train / {val_skipped} val examples longer than {recipe.max_seq_len} tokens")
        ckpt_dir = out / "checkpoints"
        if overwrite and ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)
        trajectory = {k: v for k, v in recipe.to_dict().items() if k not in NON_TRAJECTORY}
        # a checkpoint of a run from other start weights is not resumed (None matches older checkpoints)
        meta = {"recipe": trajectory, "data": ds.fingerprint(), "dtype": prepared.dtype,
                "resumed_from": warm.sha256 if warm is not None else None}
        pad_id = pad_id_of(tok)
        loop = Loop(prepared.model, recipe, train_ex, val_ex, pad_id, prepared.device, prepared.dtype,
                    ckpt_dir, meta, progress=progress, log=say, on_step=on_step)
        with disk_errors(ckpt_dir):
            ckpt_dir.mkdir(parents=True, exist_ok=True)
        loop.resume()
        say(f"training {len(train_ex)} examples ({len(val_ex)} val) for {loop.total} steps "
            f"({loop.steps_per_epoch} per epoch)")
        state = loop.run()
        info = _info(ds, name, recipe, backend.name, prepared, loop, state, skipped)
        if warm is not None:
            info["resumed_from"] = warm.describe()

        def fill(tmp: Path) -> None:
            backend.save_adapter(prepared.model, tmp)
            atomic_write_json(tmp / "schemagen.json", info)
            plot_loss(state.curve, tmp / "loss.png", f"{name} ({backend.name}, r={recipe.lora_r})")
            (tmp / "README.md").write_text(model_card(info), encoding="utf-8")

        write_dir_atomically(out, fill)
        say(f"adapter written to {out}")
        return info
    finally:
        torch.set_num_threads(old_threads)


def _info(ds: Any, name: str, recipe: Recipe, backend: str, prepared: Any, loop: Loop, state: State,
          skipped: int) -> dict[str, Any]:
    train_losses = [p["train_loss"] for p in state.curve if "train_loss" in p]
    tail = train_losses[-10:]
    hyper = {k: v for k, v in recipe.to_dict().items() if k not in ("base", "backend")}
    hyper["target_modules"] = recipe.targets()
    hyper.update(total_steps=loop.total, steps_per_epoch=loop.steps_per_epoch, skipped_long=skipped)
    return {
        "format": FORMAT,
        "name": name,
        "schema_sha256": ds.schema_sha256,
        "schema": ds.schema,
        "schema_title": str(ds.schema.get("title") or ""),
        "dataset": {"path": str(ds.path.resolve()), "manifest": ds.manifest, "review": ds.review},
        "base_model": recipe.base,
        "base_model_path": str(prepared.base_path),
        "backend": backend,
        "dtype": prepared.dtype,
        "system_prompt": TASK_SYSTEM,
        "hyperparameters": hyper,
        "metrics": {
            "train_loss": sum(tail) / len(tail) if tail else None,
            "val_loss": state.last_val[1] if state.last_val else None,
            "best_val_loss": state.best_val,
            "tokens_per_s": state.tokens / max(state.seconds, 1e-9),
            "train_tokens": state.tokens,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "steps": state.step,
            "epochs": round(state.step / loop.steps_per_epoch, 3),
            "seconds": round(state.seconds, 2),
            "stopped_early": state.stopped_early,
        },
        "loss_curve": state.curve,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def read_adapter_info(adapter_dir: str | Path) -> dict[str, Any]:
    """An adapter directory's schemagen.json (one-line errors)."""
    p = Path(adapter_dir) / "schemagen.json"
    if not p.is_file():
        raise SchemagenError("not a schemagen adapter (no schemagen.json)", Path(adapter_dir))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemagenError(f"unreadable: {exc}", p) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SchemagenError(f"not a {FORMAT} file", p)
    return data
