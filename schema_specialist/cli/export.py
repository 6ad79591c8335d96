"""`schemagen export ADAPTER`: a merged safetensors model (--merged DIR) or GGUF through Unsloth (--gguf DIR)."""

from __future__ import annotations

import click


@click.command("export", context_settings={"show_default": True})
@click.argument("adapter", type=click.Path(file_okay=False, path_type=str))
@click.option("--merged", "merged_dir", default=None, help="write base + LoRA merged (safetensors + tokenizer) here")
@click.option("--gguf", "gguf_dir", default=None, help="write a GGUF model here (needs the gpu extra: Unsloth)")
@click.option("--quant", default="q4_k_m", help="GGUF quantization method")
@click.option("--overwrite", is_flag=True, help="replace an existing output directory")
def command(adapter: str, merged_dir: str | None, gguf_dir: str | None, quant: str, overwrite: bool) -> None:
    """Export a trained adapter for serving without PEFT."""
    from ..errors import SchemagenError

    if not merged_dir and not gguf_dir:
        raise SchemagenError("nothing to export: give --merged DIR and/or --gguf DIR")
    from ..training.export import export_gguf, export_merged

    if gguf_dir:  # checked first: it is the one that can refuse to run here
        export_gguf(adapter, gguf_dir, quantization=quant, overwrite=overwrite)
        click.echo(f"gguf written to {gguf_dir}")
    if merged_dir:
        export_merged(adapter, merged_dir, overwrite=overwrite)
        click.echo(f"merged model written to {merged_dir}")
