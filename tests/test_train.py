"""`schemagen train` / `schemagen export` on the tiny random Mistral (fast) and SmolLM2 (slow)."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schema_specialist.cli import main
from schema_specialist.errors import SchemagenError
from schema_specialist.training import base as backend_base
from schema_specialist.training import select_backend, train
from schema_specialist.training.data import IGNORE, encode, encode_all, epoch_batches, load_dataset
from tests.conftest import ORDER_SCHEMA

FAST = {"lr": 1e-2, "batch_size": 4, "grad_accum": 1, "threads": 1, "checkpoint_every": 0, "warmup_ratio": 0.0}


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("schemagen: error: ") and result.stderr.strip().endswith(errors[0])
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in errors[0]


@pytest.fixture
def orders(make_dataset: Callable[..., Path], order_pairs: list[tuple[str, Any]]) -> Path:
    return make_dataset(ORDER_SCHEMA, order_pairs, name="orders")


# --- data: masking and batching ---------------------------------------------------------------

def test_answer_only_masking(orders: Path, tiny_mistral_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_mistral_dir)
    messages, answer = load_dataset(orders).train[0]
    ex = encode(tok, messages, answer)
    prompt = tok(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
                 add_special_tokens=False)["input_ids"]
    n = len(prompt)
    assert ex.input_ids[:n] == list(prompt)
    assert ex.labels[:n] == [IGNORE] * n  # every prompt position is masked
    assert ex.labels[n:] == ex.input_ids[n:]  # every answer position is trained
    assert ex.labels[-1] == tok.eos_token_id and tok.eos_token == "<|im_end|>"
    assert tok.decode(ex.input_ids[n:-1]) == answer


def test_long_examples_skipped_not_truncated(orders: Path, tiny_mistral_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_mistral_dir)
    pairs = load_dataset(orders).train
    kept, skipped = encode_all(tok, pairs, 10)
    assert kept == [] and skipped == len(pairs)


def test_length_bucketing_is_deterministic_and_complete() -> None:
    lengths = [(i * 37) % 101 for i in range(50)]
    a = epoch_batches(lengths, 4, 3, seed=1, epoch=2)
    assert a == epoch_batches(lengths, 4, 3, seed=1, epoch=2)
    assert a != epoch_batches(lengths, 4, 3, seed=1, epoch=3)
    assert sorted(i for b in a for i in b) == list(range(50))
    for b in a:  # sorted by length inside each batch
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in a)
    plain = epoch_batches(lengths, 4, 1, seed=1, epoch=2)
    assert padded < sum(max(lengths[i] for i in b) * len(b) for b in plain)


def test_collate_pads_to_a_multiple_on_the_right() -> None:
    from schema_specialist.training.data import Example, collate

    examples = [Example([1, 2, 3], [IGNORE, 2, 3]), Example([4] * 40, [IGNORE] * 30 + [4] * 10)]
    batch = collate(examples, pad_id=0, multiple=32)
    assert batch["input_ids"].shape == (2, 64) and batch["tokens"] == 43
    assert batch["input_ids"][0, :3].tolist() == [1, 2, 3] and batch["input_ids"][0, 3:].eq(0).all()
    assert batch["labels"][0, 3:].eq(IGNORE).all() and batch["attention_mask"].sum() == 43
    assert collate(examples, pad_id=0)["input_ids"].shape == (2, 40)


def _tiny_examples(orders: Path, tiny_mistral_dir: Path) -> tuple[Any, Any, list[Any]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_mistral_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_mistral_dir)
    examples, _ = encode_all(tok, load_dataset(orders).train[:6], 512)
    return tok, model, examples


def test_right_padding_is_invisible_to_the_loss(orders: Path, tiny_mistral_dir: Path) -> None:
    """The loss forward takes no attention mask: each example's loss alone equals its share of a padded batch."""
    import torch

    from schema_specialist.training.data import collate
    from schema_specialist.training.loop import answer_loss

    tok, model, examples = _tiny_examples(orders, tiny_mistral_dir)
    assert len({len(e) for e in examples}) > 1  # the batch really holds pads
    with torch.no_grad():
        alone = [answer_loss(model, collate([e], tok.pad_token_id), "cpu", "float32") for e in examples]
        batched, n = answer_loss(model, collate(examples, tok.pad_token_id, 32), "cpu", "float32")
    assert n == sum(k for _, k in alone)
    assert float(batched) == pytest.approx(sum(float(loss) for loss, _ in alone), rel=1e-5)


def test_lora_inputs_stay_in_the_compute_dtype(orders: Path, tiny_mistral_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PEFT's fp32 input cast the bf16 loss and gradients are the same; prepare() turns the cast off.
    bf16 runs on any CPU, only slowly where it is not native: the test does not need the hardware."""
    import torch
    from peft import LoraConfig, get_peft_model

    from schema_specialist.training.data import collate
    from schema_specialist.training.loop import answer_loss
    from schema_specialist.training.peft_backend import PeftBackend, keep_input_dtype
    from schema_specialist.training.recipe import make_recipe

    tok, model, examples = _tiny_examples(orders, tiny_mistral_dir)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    model = get_peft_model(model.to(torch.bfloat16), config)
    batch = collate(examples, tok.pad_token_id)

    def loss_and_grads() -> tuple[float, list[Any]]:
        model.zero_grad()
        loss, _ = answer_loss(model, batch, "cpu", "bfloat16")
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    cast_loss, cast_grads = loss_and_grads()
    keep_input_dtype(model)
    loss, grads = loss_and_grads()
    assert loss == pytest.approx(cast_loss, rel=1e-6)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(grads, cast_grads, strict=True))

    monkeypatch.setattr("schema_specialist.training.lora.cpu_bf16_supported", lambda: True)
    prepared = PeftBackend().prepare(make_recipe({"base": str(tiny_mistral_dir), "dtype": "bfloat16"}))
    flags = [m.cast_input_dtype_enabled for m in prepared.model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    assert flags and not any(flags)


def test_lora_layers_trains_only_the_top_layers(orders: Path, tiny_mistral_dir: Path, tmp_path: Path) -> None:
    """--lora-layers N: LoRA weights only in the last N layers, so no gradient is computed below them."""
    from safetensors import safe_open

    from schema_specialist.training.peft_backend import PeftBackend
    from schema_specialist.training.recipe import make_recipe

    prepared = PeftBackend().prepare(make_recipe({"base": str(tiny_mistral_dir), "lora_layers": 1}))
    total = prepared.model.config.num_hidden_layers
    assert total >= 2
    with_lora = {int(name.split(".layers.")[1].split(".")[0])
                 for name, p in prepared.model.named_parameters() if p.requires_grad}
    assert with_lora == {total - 1}

    result = run_cli("train", orders, "-o", tmp_path / "a", "--base", tiny_mistral_dir, "--lora-layers", "1",
                     "--max-steps", "2", "--threads", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    with safe_open(str(tmp_path / "a" / "adapter_model.safetensors"), "pt") as f:
        layers = {int(k.split(".layers.")[1].split(".")[0]) for k in f.keys()}  # noqa: SIM118 (a safetensors handle is not iterable)
    assert layers == {total - 1}
    assert json.loads((tmp_path / "a" / "adapter_config.json").read_text())["layers_to_transform"] == [total - 1]

    too_many = run_cli("train", orders, "-o", tmp_path / "b", "--base", tiny_mistral_dir, "--lora-layers",
                       str(total + 1), "--threads", "1")
    assert_one_line_error(too_many, f"--lora-layers {total + 1}", f"{total} layers")


# --- backends ---------------------------------------------------------------------------------

def test_auto_backend_picks_peft_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_base, "cuda_available", lambda: False)
    assert select_backend("auto").name == "peft"
    with pytest.raises(SchemagenError, match="CUDA"):
        select_backend("unsloth")


def test_auto_backend_picks_unsloth_with_cuda_and_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from schema_specialist.training import unsloth_backend

    for mod in (backend_base, unsloth_backend):
        monkeypatch.setattr(mod, "cuda_available", lambda: True)
        monkeypatch.setattr(mod, "unsloth_installed", lambda: True)
    assert select_backend("auto").name == "unsloth"  # selection only: unsloth itself is not imported


def test_unsloth_without_gpu_is_one_line(orders: Path, tmp_path: Path) -> None:
    result = run_cli("train", orders, "-o", tmp_path / "a", "--backend", "unsloth", "--no-progress")
    assert_one_line_error(result, "unsloth", "GPU")
    assert not (tmp_path / "a").exists()


# --- training ---------------------------------------------------------------------------------

def test_loss_falls_and_adapter_reloads(orders: Path, tiny_mistral_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from schema_specialist.training.loop import evaluate

    out = tmp_path / "adapter"
    info = train(orders, out, base=str(tiny_mistral_dir), max_steps=24, progress=False, log=lambda m: None,
                 **FAST)
    losses = [p["train_loss"] for p in info["loss_curve"] if "train_loss" in p]
    assert len(losses) == 24
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.2
    for f in ("adapter_config.json", "adapter_model.safetensors", "schemagen.json", "loss.png"):
        assert (out / f).is_file(), f
    assert not (out / "checkpoints").exists()
    saved = json.loads((out / "schemagen.json").read_text())
    assert saved["format"] == "schemagen-adapter/1" and saved["backend"] == "peft"
    assert saved["schema"] == ORDER_SCHEMA and saved["dataset"]["manifest"]["format"] == "schemagen-dataset/1"
    assert saved["system_prompt"] == "Reply with the JSON only."
    assert saved["hyperparameters"]["lora_r"] == 16 and saved["metrics"]["tokens_per_s"] > 0
    m = saved["metrics"]
    assert {"train_loss", "val_loss", "tokens_per_s", "peak_rss_mb", "steps", "epochs", "seconds"} <= set(m)

    # The reloaded adapter reproduces the in-training model's final val loss exactly...
    tok = AutoTokenizer.from_pretrained(tiny_mistral_dir)
    val, _ = encode_all(tok, load_dataset(orders).val, 512)
    # (base weights in the dtype training froze them in: bf16 under bf16 compute)
    weights = torch.bfloat16 if saved["dtype"] == "bfloat16" else torch.float32
    base = AutoModelForCausalLM.from_pretrained(tiny_mistral_dir, dtype=weights)
    ids = torch.tensor([val[0].input_ids])
    with torch.no_grad():
        base_logits = base(input_ids=ids).logits
    model = PeftModel.from_pretrained(base, str(out))
    reloaded = evaluate(model, val, FAST["batch_size"] * 2, tok.pad_token_id, "cpu", saved["dtype"])
    assert reloaded == pytest.approx(m["val_loss"], rel=1e-5)
    # ... and differs from the bare base model.
    with torch.no_grad():
        assert not torch.allclose(model(input_ids=ids).logits, base_logits, atol=1e-3)


@pytest.mark.parametrize("neftune", [0.0, 5.0])
def test_resumed_run_ends_where_uninterrupted_one_does(orders: Path, tiny_mistral_dir: Path,
                                                       tmp_path: Path, neftune: float) -> None:
    from safetensors.torch import load_file

    recipe = {**FAST, "base": str(tiny_mistral_dir), "max_steps": 9, "checkpoint_every": 3,
              "lora_dropout": 0.1, "neftune_alpha": neftune, "progress": False, "log": lambda m: None}
    whole = train(orders, tmp_path / "whole", **recipe)

    def interrupt(state: Any) -> None:
        if state.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(orders, tmp_path / "split", on_step=interrupt, **recipe)
    ckpts = sorted(p.name for p in (tmp_path / "split" / "checkpoints").iterdir())
    assert ckpts == ["step-0000003"]
    assert not (tmp_path / "split" / "adapter_model.safetensors").exists()
    logs: list[str] = []
    resumed = train(orders, tmp_path / "split", **{**recipe, "log": logs.append})
    assert any("resumed from" in line and "step 3/9" in line for line in logs)
    def losses(info: dict[str, Any]) -> list[float]:
        return [p.get("train_loss", p.get("val_loss")) for p in info["loss_curve"]]

    assert [p["step"] for p in resumed["loss_curve"]] == [p["step"] for p in whole["loss_curve"]]
    assert losses(resumed) == pytest.approx(losses(whole), rel=1e-5)
    assert resumed["metrics"]["val_loss"] == pytest.approx(whole["metrics"]["val_loss"], rel=1e-5)
    a = load_file(str(tmp_path / "whole" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "split" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-5, k


def test_neftune_noise_trains_on_noisy_embeddings_and_validates_on_clean_ones(
        orders: Path, tiny_mistral_dir: Path, tmp_path: Path) -> None:
    """--neftune-alpha: the training losses change (noise on), validation is the noiseless loss."""
    from schema_specialist.training.data import collate
    from schema_specialist.training.loop import EmbeddingNoise, answer_loss, evaluate

    recipe = {**FAST, "base": str(tiny_mistral_dir), "max_steps": 3, "progress": False, "log": lambda m: None}
    plain = train(orders, tmp_path / "plain", **recipe)
    noisy = train(orders, tmp_path / "noisy", **{**recipe, "neftune_alpha": 50.0})
    assert noisy["hyperparameters"]["neftune_alpha"] == 50.0
    first = [p["train_loss"] for p in plain["loss_curve"] if "train_loss" in p][0]
    assert [p["train_loss"] for p in noisy["loss_curve"] if "train_loss" in p][0] != pytest.approx(first, rel=1e-6)

    tok, model, examples = _tiny_examples(orders, tiny_mistral_dir)
    batch = collate(examples, tok.pad_token_id)
    model.train()
    clean_train, _ = answer_loss(model, batch, "cpu", "float32")
    clean_val = evaluate(model, examples, 4, tok.pad_token_id, "cpu", "float32")
    noise = EmbeddingNoise(model, 50.0, seed=0)
    noise.reseed(0, 0)
    assert answer_loss(model, batch, "cpu", "float32")[0].item() != pytest.approx(clean_train.item(), rel=1e-6)
    assert evaluate(model, examples, 4, tok.pad_token_id, "cpu", "float32") == pytest.approx(clean_val, rel=1e-6)
    noise.remove()
    assert answer_loss(model, batch, "cpu", "float32")[0].item() == pytest.approx(clean_train.item(), rel=1e-6)


def test_resume_refuses_a_different_recipe(orders: Path, tiny_mistral_dir: Path, tmp_path: Path) -> None:
    recipe = {**FAST, "base": str(tiny_mistral_dir), "max_steps": 4, "checkpoint_every": 2,
              "progress": False, "log": lambda m: None}

    def interrupt(state: Any) -> None:
        if state.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(orders, tmp_path / "a", on_step=interrupt, **recipe)
    with pytest.raises(SchemagenError, match="lr differs"):
        train(orders, tmp_path / "a", **{**recipe, "lr": 0.5})
    info = train(orders, tmp_path / "a", overwrite=True, **{**recipe, "lr": 0.5})  # --overwrite restarts
    assert info["metrics"]["steps"] == 4 and info["hyperparameters"]["lr"] == 0.5


# --- CLI: happy path, config, export ------------------------------------------------------------

def test_cli_config_flags_override_and_export(orders: Path, tiny_mistral_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "recipe.toml"
    cfg.write_text(f'base_model = "{tiny_mistral_dir}"\nlora_r = 4\nlr = 0.5\nmax-steps = 3\nthreads = 1\n'
                   'lora_target_modules = ["q_proj", "v_proj"]\n')
    result = run_cli("train", orders, "--config", cfg, "--lr", "0.001", "--no-progress", "--checkpoint-every", "0")
    assert result.exit_code == 0, result.output
    assert "backend: peft" in result.stderr
    out = tmp_path / "adapters" / "orders"  # default name = dataset dir name
    info = json.loads((out / "schemagen.json").read_text())
    h = info["hyperparameters"]
    assert (h["lora_r"], h["lr"], h["max_steps"]) == (4, 0.001, 3)  # config values, the flag wins for lr
    assert h["target_modules"] == ["q_proj", "v_proj"] and info["name"] == "orders"

    again = run_cli("train", orders, "--config", cfg, "--no-progress")  # nothing overwritten
    assert_one_line_error(again, "--overwrite")

    merged_dir = tmp_path / "merged"
    assert run_cli("export", out, "--merged", merged_dir).exit_code == 0
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_mistral_dir, dtype=torch.float32),
                                     str(out))
    ids = torch.tensor([[1, 5, 9, 200, 3000, 7]])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, peft(input_ids=ids).logits, atol=1e-4)
    assert (merged_dir / "tokenizer_config.json").is_file()
    assert_one_line_error(run_cli("export", out, "--gguf", tmp_path / "gguf"), "gpu extra")
    assert not (tmp_path / "gguf").exists()


# --- bad inputs: exit 2, one line, nothing overwritten ---------------------------------------

def test_empty_dataset(orders: Path, tmp_path: Path) -> None:
    (orders / "train.jsonl").write_text("")
    assert_one_line_error(run_cli("train", orders, "-o", tmp_path / "a"), "train.jsonl", "no training examples")


def test_malformed_dataset(orders: Path, tmp_path: Path) -> None:
    with (orders / "train.jsonl").open("a") as f:
        f.write("{not json\n")
    assert_one_line_error(run_cli("train", orders, "-o", tmp_path / "a"), "train.jsonl", "not valid JSON")
    assert_one_line_error(run_cli("train", tmp_path / "nope", "-o", tmp_path / "a"), "nope")


def test_schema_changed_since_generation(orders: Path, tmp_path: Path) -> None:
    changed = {**ORDER_SCHEMA, "required": ["id"]}
    (orders / "source_schema.json").write_text(json.dumps(changed))
    assert_one_line_error(run_cli("train", orders, "-o", tmp_path / "a"), "source_schema.json", "schema changed")


def test_missing_base_model(orders: Path, tmp_path: Path) -> None:
    result = run_cli("train", orders, "-o", tmp_path / "a", "--base", tmp_path / "no-such-model")
    assert_one_line_error(result, "no-such-model")


def test_rank_too_large(orders: Path, tiny_mistral_dir: Path, tmp_path: Path) -> None:
    result = run_cli("train", orders, "-o", tmp_path / "a", "--base", tiny_mistral_dir, "--lora-r", "100",
                     "--threads", "1")
    assert_one_line_error(result, "rank 100")
    assert not (tmp_path / "a").exists()


def test_no_space_left_keeps_old_adapter(orders: Path, tiny_mistral_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from schema_specialist.training.peft_backend import PeftBackend

    out = tmp_path / "a"
    args = ["train", orders, "-o", out, "--base", tiny_mistral_dir, "--max-steps", "2", "--threads", "1",
            "--no-progress", "--checkpoint-every", "1"]
    assert run_cli(*args).exit_code == 0
    before = (out / "adapter_model.safetensors").read_bytes()

    def full(self: Any, model: Any, directory: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PeftBackend, "save_adapter", full)
    result = run_cli(*args, "--overwrite", "--lr", "0.05")
    assert_one_line_error(result, "no space left on device")
    assert (out / "adapter_model.safetensors").read_bytes() == before  # the old adapter is untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp dirs left


def test_bad_config_and_values(orders: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lora_rank: 8\n")
    assert_one_line_error(run_cli("train", orders, "--config", cfg), "unknown config key")
    assert_one_line_error(run_cli("train", orders, "--lora-r", "0"), "--lora-r")


# --- the real embedded model --------------------------------------------------------------------

@pytest.mark.slow
def test_smollm2_three_steps(orders: Path, embedded_model_dir: Path, tmp_path: Path) -> None:
    from peft import PeftConfig

    info = train(orders, tmp_path / "smol", max_steps=3, batch_size=2, grad_accum=1, threads=1,
                 checkpoint_every=0, progress=False, log=lambda m: None)
    assert info["base_model"] == "smollm2" and info["metrics"]["steps"] == 3
    assert info["metrics"]["val_loss"] is not None
    cfg = PeftConfig.from_pretrained(str(tmp_path / "smol"))
    assert set(cfg.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_loading_a_model_prints_no_library_bar(tiny_mistral_dir: Path, capfd: Any) -> None:
    """generate, train, eval and serve all load through `models.load_model`: no "Loading weights" bar."""
    from schema_specialist.models import load_model

    capfd.readouterr()
    load_model(str(tiny_mistral_dir))
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err and "it/s" not in err


def test_preparing_lora_raises_no_library_warning(tiny_mistral_dir: Path) -> None:
    """PEFT's FutureWarnings about transformers' deprecated names stay out of `schemagen train`'s output."""
    import warnings

    from schema_specialist.training.peft_backend import PeftBackend
    from schema_specialist.training.recipe import make_recipe

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PeftBackend().prepare(make_recipe({"base": str(tiny_mistral_dir)}))
    assert not [w for w in caught if issubclass(w.category, FutureWarning | UserWarning)], \
        [str(w.message) for w in caught]


def test_an_adapter_directory_with_eval_outputs_can_be_retrained(tmp_path: Path) -> None:
    from schema_specialist.training.api import check_out_dir

    out = tmp_path / "adapter"
    for sub in ("report", "reliability"):  # eval's default report dir, bench_reliability's
        (out / sub).mkdir(parents=True)
    (out / "schemagen.json").write_text("{}")
    (out / "eval.json").write_text("{}")
    check_out_dir(out, overwrite=True)
    with pytest.raises(SchemagenError, match="--overwrite"):
        check_out_dir(out, overwrite=False)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SchemagenError, match="not a schemagen adapter"):
        check_out_dir(out, overwrite=True)
