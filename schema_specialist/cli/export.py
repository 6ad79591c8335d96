"""`schemagen export ADAPTER`: a merged safetensors model (--merged DIR), GGUF through Unsloth (--gguf DIR),
or the vLLM launch line for it (--vllm)."""

from __future__ import annotations

import json

import click


@click.command("export", context_settings={"show_default": True})
@click.argument("adapter", type=click.Path(file_okay=False, path_type=str))
@click.option("--merged", "merged_dir", default=None, help="write base + LoRA merged (safetensors + tokenizer) here")
@click.option("--gguf", "gguf_dir", default=None, help="write a GGUF model here (needs the gpu extra: Unsloth)")
@click.option("--quant", default="q4_k_m", help="GGUF quantization method")
@click.option("--vllm", "vllm", is_flag=True,
              help="check that vLLM can load the adapter (or every adapter of a registry directory) and print "
                   "the `vllm serve` line and the request that routes to each adapter")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), help="port in the printed vLLM line")
@click.option("--overwrite", is_flag=True, help="replace an existing output directory")
def command(adapter: str, merged_dir: str | None, gguf_dir: str | None, quant: str, vllm: bool, port: int,
            overwrite: bool) -> None:
    """Export a trained adapter for serving without PEFT, or for vLLM."""
    from ..errors import SchemagenError

    if not merged_dir and not gguf_dir and not vllm:
        raise SchemagenError("nothing to export: give --merged DIR, --gguf DIR and/or --vllm")
    from ..training.export import export_gguf, export_merged, vllm_launch

    if vllm:
        plan = vllm_launch(adapter, port=port)
        click.echo(f"vLLM can load {plan['adapters']} adapter(s): LoRA rank, bias none, no modules_to_save, "
                   "no DoRA checked. Launch:", err=True)
        click.echo(plan["command"])
        click.echo("Each request names its adapter in `model` and sends the schema as `response_format` "
                   f"(the same body works against `schemagen serve`); POST http://127.0.0.1:{port}/v1/chat/completions:",
                   err=True)
        for body in plan["requests"]:
            click.echo(json.dumps(body, separators=(",", ":")))
    if gguf_dir:  # checked first: it is the one that can refuse to run here
        export_gguf(adapter, gguf_dir, quantization=quant, overwrite=overwrite)
        click.echo(f"gguf written to {gguf_dir}")
    if merged_dir:
        export_merged(adapter, merged_dir, overwrite=overwrite)
        click.echo(f"merged model written to {merged_dir}")
