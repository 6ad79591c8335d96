"""`schemagen train DATASET --resume-from ADAPTER`: a new run whose LoRA weights start from an adapter."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schema_specialist.training import train
from schema_specialist.training.recipe import Recipe
from schema_specialist.training.warm import RESUME_LR
from tests.conftest import ORDER_SCHEMA
from tests.test_train import FAST, assert_one_line_error, run_cli

TARGETS = "q_proj,v_proj,up_proj,down_proj"


def _first_loss(info: dict[str, Any]) -> float:
    return next(p["train_loss"] for p in info["loss_curve"] if "train_loss" in p)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_mistral_dir: Path,
            order_pairs_module: list[tuple[str, Any]]) -> tuple[Path, Path]:
    """(dataset, adapter): an adapter trained 24 steps at r=8 on four of the seven projections."""
    from tests.conftest import write_dataset

    root = tmp_path_factory.mktemp("resume-from")
    ds = write_dataset(root / "orders", ORDER_SCHEMA, order_pairs_module)
    train(ds, root / "first", base=str(tiny_mistral_dir), max_steps=24, lora_r=8, target_modules=TARGETS,
          progress=False, log=lambda m: None, **FAST)
    return ds, root / "first"


@pytest.fixture(scope="module")
def order_pairs_module() -> list[tuple[str, Any]]:
    statuses = ["new", "paid", "shipped"]
    return [(f"Record order: id is A{i:03d}; status is {statuses[i % 3]}; total is {i * 2.5}.",
             {"id": f"A{i:03d}", "status": statuses[i % 3], "total": i * 2.5}) for i in range(40)]


def test_weights_start_from_the_adapter(trained: tuple[Path, Path], tiny_mistral_dir: Path) -> None:
    """Right after loading, the fresh LoRA model holds exactly the adapter's weights."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    from schema_specialist.training.peft_backend import PeftBackend
    from schema_specialist.training.recipe import make_recipe
    from schema_specialist.training.warm import read_warm_start

    _, adapter = trained
    warm = read_warm_start(adapter)
    prepared = PeftBackend().prepare(make_recipe({**warm.recipe_defaults(), "dtype": "float32"}))
    fresh = get_peft_model_state_dict(prepared.model)
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    assert any(not torch.equal(fresh[k], saved[k]) for k in saved)  # a fresh init differs ...
    warm.load_into(prepared.model)
    loaded = get_peft_model_state_dict(prepared.model)
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)  # ... then not


def test_resumed_run_starts_where_the_adapter_ended(trained: tuple[Path, Path], tiny_mistral_dir: Path,
                                                    tmp_path: Path) -> None:
    ds, adapter = trained
    first = json.loads((adapter / "schemagen.json").read_text())
    recipe = {**FAST, "base": str(tiny_mistral_dir), "max_steps": 3, "lora_r": 8, "target_modules": TARGETS,
              "progress": False, "log": lambda m: None}
    scratch = train(ds, tmp_path / "scratch", **recipe)
    resumed = train(ds, tmp_path / "resumed", resume_from=adapter, **recipe)
    # the first step of the resumed run has the loss the adapter ended with, far below a fresh start's
    assert _first_loss(resumed) < _first_loss(scratch) - 0.5, (_first_loss(resumed), _first_loss(scratch))
    assert _first_loss(resumed) < first["metrics"]["train_loss"] + 0.3
    r = resumed["resumed_from"]
    assert r["path"] == str(adapter.resolve()) and r["steps"] == 24
    assert r["weights_sha256"] == hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    saved = json.loads((tmp_path / "resumed" / "schemagen.json").read_text())
    assert saved["resumed_from"] == r and "resumed_from" not in scratch
    assert "started from" in (tmp_path / "resumed" / "README.md").read_text()


def test_cli_takes_rank_and_targets_from_the_adapter(trained: tuple[Path, Path], tmp_path: Path) -> None:
    ds, adapter = trained
    out = tmp_path / "second"
    result = run_cli("train", ds, "-o", out, "--resume-from", adapter, "--max-steps", "2", "--threads", "1",
                     "--checkpoint-every", "0", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "LoRA weights from" in result.stderr
    info = json.loads((out / "schemagen.json").read_text())
    h = info["hyperparameters"]
    assert h["lora_r"] == 8 and sorted(h["target_modules"]) == sorted(TARGETS.split(","))
    assert info["resumed_from"]["path"] == str(adapter.resolve())
    assert h["lr"] == RESUME_LR != Recipe.lr  # a resumed run defaults to the lower rate


def test_cli_takes_lora_layers_from_the_adapter(trained: tuple[Path, Path], tiny_mistral_dir: Path,
                                               tmp_path: Path) -> None:
    """An adapter trained with --lora-layers resumes with the same layers unless told, and refuses others."""
    orders_for_layers = trained[0]
    first = tmp_path / "top"
    train(orders_for_layers, first, base=str(tiny_mistral_dir), max_steps=2, lora_layers=1, progress=False,
          log=lambda m: None, **FAST)
    out = tmp_path / "second"
    result = run_cli("train", orders_for_layers, "-o", out, "--resume-from", first, "--max-steps", "1",
                     "--threads", "1", "--checkpoint-every", "0", "--no-progress")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "schemagen.json").read_text())["hyperparameters"]["lora_layers"] == 1
    other = run_cli("train", orders_for_layers, "-o", tmp_path / "x", "--resume-from", first, "--lora-layers", "0",
                    "--no-progress")
    assert_one_line_error(other, str(first), "has LoRA on its last 1 layers, not --lora-layers 0")


def test_an_explicit_learning_rate_wins_over_the_resume_default(trained: tuple[Path, Path], tmp_path: Path) -> None:
    ds, adapter = trained
    result = run_cli("train", ds, "-o", tmp_path / "lr", "--resume-from", adapter, "--max-steps", "1", "--threads",
                     "1", "--checkpoint-every", "0", "--no-progress", "--lr", "1e-3")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "lr" / "schemagen.json").read_text())["hyperparameters"]["lr"] == 1e-3


@pytest.mark.parametrize(("args", "needles"), [
    (["--lora-r", "4"], ["LoRA r 8", "--lora-r 4"]),
    (["--target-modules", "q_proj,k_proj"], ["targets down_proj,q_proj,up_proj,v_proj"]),
    (["--lora-alpha", "7"], ["lora_alpha"]),
    (["--lora-layers", "1"], ["has LoRA on every layer, not --lora-layers 1"]),
])
def test_a_different_rank_or_targets_is_one_line(trained: tuple[Path, Path], tmp_path: Path, args: list[str],
                                                  needles: list[str]) -> None:
    ds, adapter = trained
    result = run_cli("train", ds, "-o", tmp_path / "x", "--resume-from", adapter, "--no-progress", *args)
    assert_one_line_error(result, str(adapter), *needles)
    assert not (tmp_path / "x").exists()


def test_bad_resume_sources_are_one_line(trained: tuple[Path, Path], tmp_path: Path,
                                         make_dataset: Callable[..., Path],
                                         order_pairs: list[tuple[str, Any]]) -> None:
    ds, adapter = trained
    assert_one_line_error(run_cli("train", ds, "-o", tmp_path / "x", "--resume-from", tmp_path),
                          "not a schemagen adapter")
    assert_one_line_error(run_cli("train", ds, "-o", adapter, "--resume-from", adapter), "-o")
    other = make_dataset({**ORDER_SCHEMA, "required": ["id"]}, order_pairs, name="other")
    assert_one_line_error(run_cli("train", other, "-o", tmp_path / "y", "--resume-from", adapter),
                          "another schema")
    assert_one_line_error(run_cli("train", ds, "-o", tmp_path / "z", "--resume-from", adapter, "--base",
                                  "smollm2"), "same --base")


def test_an_interrupted_resumed_run_continues_from_its_checkpoint(trained: tuple[Path, Path], tiny_mistral_dir: Path,
                                                                  tmp_path: Path) -> None:
    from schema_specialist.errors import SchemagenError

    ds, adapter = trained
    recipe = {**FAST, "base": str(tiny_mistral_dir), "max_steps": 4, "checkpoint_every": 2, "lora_r": 8,
              "target_modules": TARGETS, "progress": False}

    def interrupt(state: Any) -> None:
        if state.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(ds, tmp_path / "b", resume_from=adapter, on_step=interrupt, log=lambda m: None, **recipe)
    # the checkpoint belongs to a run started from the adapter: a plain run may not pick it up
    with pytest.raises(SchemagenError, match="resumed_from differs"):
        train(ds, tmp_path / "b", log=lambda m: None, **recipe)
    logs: list[str] = []
    info = train(ds, tmp_path / "b", resume_from=adapter, log=logs.append, **recipe)
    assert any("resumed from" in line and "step 2/4" in line for line in logs)
    assert info["metrics"]["steps"] == 4 and info["resumed_from"]["path"] == str(adapter.resolve())
