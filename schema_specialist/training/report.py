"""What lands next to the adapter: the loss-curve PNG and a short model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_loss(curve: list[dict[str, Any]], path: Path, title: str) -> None:
    """Train loss per step and val loss per epoch, as a PNG (matplotlib Agg, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(p["step"], p["train_loss"]) for p in curve if "train_loss" in p]
    val = [(p["step"], p["val_loss"]) for p in curve if "val_loss" in p]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train", linewidth=1)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="val")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("answer-token loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def model_card(info: dict[str, Any]) -> str:
    m, h = info["metrics"], info["hyperparameters"]
    val = f"{m['val_loss']:.4f}" if m.get("val_loss") is not None else "n/a"
    return (
        f"# {info['name']}: a schemagen format specialist\n\n"
        f"LoRA adapter that answers with JSON valid for the schema **{info['schema_title'] or info['name']}** "
        f"(sha256 `{info['schema_sha256'][:16]}`).\n\n"
        f"- base model: `{info['base_model']}` ({info['base_model_path']})\n"
        f"- backend: {info['backend']}, compute dtype {info['dtype']}\n"
        f"- LoRA r={h['lora_r']} alpha={h['lora_alpha']} dropout={h['lora_dropout']} on {h['target_modules']}\n"
        f"- {m['steps']} steps ({m['epochs']} epochs), train loss {m['train_loss']:.4f}, val loss {val}, "
        f"{m['tokens_per_s']:.0f} tokens/s\n"
        f"- system prompt: `{info['system_prompt']}`\n"
        + (f"- LoRA weights started from `{info['resumed_from']['path']}` (sha256 "
           f"`{info['resumed_from']['weights_sha256'][:16]}`)\n" if info.get("resumed_from") else "")
        + "\n"
        "Load with `PeftModel.from_pretrained(base, this_dir)` or serve with vLLM `--lora-modules`.\n"
    )
