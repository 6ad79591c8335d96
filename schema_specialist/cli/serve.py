"""`schemagen serve`: one base model, every adapter of a registry, an OpenAI-compatible API."""

from __future__ import annotations

import click

from ..serve.prefix import DEFAULT_PREFIX_TOKENS


@click.command("serve")
@click.option("--adapters", "adapters_dir", default="adapters", type=click.Path(file_okay=False),
              help="Registry directory: one subdirectory per adapter made by `schemagen train`.")
@click.option("--base", default=None, help="Base model spec (default: the adapters' own base; 'smollm2' if none).")
@click.option("--host", default="127.0.0.1", help="Interface to listen on (loopback by default).")
@click.option("--port", default=8000, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--max-new-tokens", default=256, type=click.IntRange(1, 4096), help="Upper bound per answer.")
@click.option("--max-batch", default=16, type=click.IntRange(1, 512),
              help="Requests decoded together (1 = one at a time).")
@click.option("--gather-ms", default=5.0, type=click.FloatRange(0, 1000),
              help="How long an idle batcher waits for more requests before it starts a batch.")
@click.option("--max-queue", default=256, type=click.IntRange(1),
              help="Requests queued or decoding at once; past it, 429 with Retry-After.")
@click.option("--request-timeout", default=300.0, type=click.FloatRange(0),
              help="Seconds a request may wait and decode before it fails with 503 (0: no limit).")
@click.option("--dtype", default="auto", type=click.Choice(["auto", "bfloat16", "float32"]),
              help="Base weights; auto = bfloat16 on CPUs with AVX512-BF16/AMX (as eval), else float32.")
@click.option("--max-body-bytes", default=1 << 20, type=click.IntRange(1024), help="Larger bodies get 413.")
@click.option("--prefix-cache-tokens", default=DEFAULT_PREFIX_TOKENS, type=click.IntRange(0), show_default=True,
              help="Prompt tokens whose KV cache is kept for reuse (schema prompts, strict retries); 0: off.")
@click.option("--threads", default=None, type=click.IntRange(1), help="torch CPU threads.")
@click.option("--prefill-thread/--no-prefill-thread", default=True, show_default=True,
              help="Prefill joining requests on a second thread while the batch decodes (wants a spare core).")
@click.option("--grounded/--no-grounded", default=True, show_default=True,
              help="Under the grammar (strict retries, the constrained path), free-text strings may only copy "
                   "runs of the request's words and numbers may only be ones it writes.")
def command(adapters_dir: str, base: str | None, host: str, port: int, max_new_tokens: int, max_batch: int,
            gather_ms: float, max_queue: int, request_timeout: float, dtype: str, max_body_bytes: int,
            prefix_cache_tokens: int, threads: int | None, prefill_thread: bool,
            grounded: bool) -> None:
    """Serve POST /v1/chat/completions, GET /v1/models and GET /health, routing each schema to its adapter."""
    from ..serve.router import Router
    from ..serve.server import serve

    router = Router(adapters_dir, base, max_new_tokens=max_new_tokens, threads=threads, dtype=dtype,
                    max_batch=max_batch, gather_ms=gather_ms, max_queue=max_queue,
                    request_timeout=request_timeout or None, prefix_cache_tokens=prefix_cache_tokens,
                    prefill_thread=prefill_thread, grounded=grounded)
    click.echo(f"schemagen: base {router.base_spec} ({router.dtype}); adapters: {', '.join(router.names) or '(none)'}",
               err=True)
    for name, why in router.skipped.items():
        click.echo(f"schemagen: skipped adapter {name}: {why}", err=True)
    click.echo(f"schemagen: serving on http://{host}:{port}/v1 (max batch {max_batch}, queue {max_queue})", err=True)
    serve(router, host, port, max_body_bytes=max_body_bytes)
