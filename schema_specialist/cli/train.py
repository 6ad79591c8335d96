"""`schemagen train DATASET_DIR`: LoRA-train a format specialist (options mirror the Recipe fields)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from ..training.recipe import Recipe
from ..training.warm import RESUME_LR


def _recipe_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """One click option per Recipe field: same name, default and help (so --help shows every default)."""
    for fld in reversed(dataclasses.fields(Recipe)):
        flag = fld.name.replace("_", "-")
        if isinstance(fld.default, bool):
            f = click.option(f"--{flag}/--no-{flag}", fld.name, default=fld.default, help=fld.metadata["help"])(f)
            continue
        choices = fld.metadata.get("choices")
        kind: Any = click.Choice(choices) if choices else type(fld.default)
        f = click.option(f"--{flag}", fld.name, type=kind, default=fld.default, help=fld.metadata["help"])(f)
    return f


@click.command("train", context_settings={"show_default": True})
@click.argument("dataset_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("-o", "--out", default=None, help="adapter directory  [default: adapters/<name>]")
@click.option("--name", default=None, help="adapter name  [default: the dataset directory's name]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML/YAML recipe (keys = flag names); flags given on the command line win")
@click.option("--overwrite", is_flag=True, help="restart from scratch: drop checkpoints, replace the adapter")
@click.option("--progress/--no-progress", default=True, help="show a progress bar (loss, tokens/s, ETA)")
@click.option("--resume-from", "resume_from", type=click.Path(file_okay=False, path_type=str), default=None,
              help="start the LoRA weights from this trained adapter (same base, rank, alpha, targets and "
                   "schema; unset, those come from it) and train on DATASET_DIR, e.g. grown by "
                   f"`generate --focus`, at --lr {RESUME_LR:g} unless given; writes a new adapter (-o)  "
                   "[default: from scratch]")
@_recipe_options
@click.pass_context
def command(ctx: click.Context, dataset_dir: str, out: str | None, name: str | None, config_file: str | None,
            overwrite: bool, progress: bool, resume_from: str | None, **recipe: Any) -> None:
    """Train a LoRA adapter on a generated dataset (PEFT on CPU, Unsloth QLoRA with --backend unsloth on CUDA).

    Rerunning the same command resumes from the last checkpoint in <out>/checkpoints. --resume-from is
    another thing: a new run whose LoRA weights start from a trained adapter.
    """
    from ..training import load_config, train

    values: dict[str, Any] = load_config(config_file) if config_file else {}
    explicit = set(values)
    for key, value in recipe.items():
        given = ctx.get_parameter_source(key) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        explicit |= {key} if given else set()
        if key not in values or given:
            values[key] = value
    if resume_from is not None:
        from ..training.warm import read_warm_start

        for key, value in read_warm_start(resume_from).recipe_defaults().items():
            if key not in explicit:
                values[key] = value
        if "lr" not in explicit:
            values.pop("lr", None)  # a resumed run's own default (`warm.RESUME_LR`)
    info = train(dataset_dir, out, name=name, overwrite=overwrite, progress=progress,
                 log=lambda m: click.echo(m, err=True), resume_from=resume_from, **values)
    m = info["metrics"]
    val = f"{m['val_loss']:.4f}" if m["val_loss"] is not None else "n/a"
    click.echo(f"{info['name']}: backend {info['backend']} ({info['dtype']}), {m['steps']} steps, "
               f"train loss {m['train_loss']:.4f}, val loss {val}, {m['tokens_per_s']:.0f} tokens/s, "
               f"peak RSS {m['peak_rss_mb']:.0f} MB")
