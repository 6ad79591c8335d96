"""`schemagen eval ADAPTER`: validity of a format specialist vs baselines, with a `--target` gate."""

from __future__ import annotations

import click


@click.command("eval")
@click.argument("adapter", type=click.Path(file_okay=False))
@click.option("-n", "n", type=int, default=300, help="Inputs in total: held-out test split first, then hypothesis.")
@click.option("--target", type=float, default=None,
              help="Gate: exit 1 when the adapter's free validity (on --gate-on) is below it (in (0, 1], e.g. 0.999).")
@click.option("--strict", is_flag=True, help="Gate on the Wilson 95% lower bound instead of the rate.")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), default=None,
              help="Report directory (report.json/.md/.png) [default: ADAPTER/report].")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Dataset directory [default: the one in ADAPTER/schemagen.json].")
@click.option("--base", default=None, help="Base model spec or directory [default: the adapter's].")
@click.option("--seed", type=int, default=0, help="Seed for hypothesis inputs and sampling.")
@click.option("--hypothesis-share", type=float, default=None,
              help="Share of n drawn by hypothesis [default: whatever the test split leaves].")
@click.option("--raw-hypothesis", is_flag=True,
              help="Draw hypothesis instances from the schema as is (no realism narrowing).")
@click.option("--inputs", "inputs", type=click.Path(dir_okay=False), multiple=True,
              help="Your own requests, JSONL: {\"question\": ..., \"answer\": ...} a line (answer optional, "
                   "\"style\" breaks figures down); reported beside the main inputs. Repeatable.")
@click.option("--gate-on", type=click.Choice(["main", "inputs", "all"]), default="main",
              help="Which inputs the gate reads: main (held-out + hypothesis), inputs (the --inputs files "
                   "pooled) or all.")
@click.option("--baseline-n", type=int, default=None,
              help="Inputs of each source for each base-model baseline [default: up to 100].")
@click.option("--no-baselines", is_flag=True, help="No base-model baselines.")
@click.option("--grammar-n", type=int, default=None,
              help="Inputs of each source for adapter + grammar; 0 = none [default: up to 100].")
@click.option("--no-guard", is_flag=True,
              help="Do not retry invalid adapter answers under the grammar (the guard's figures).")
@click.option("--grounded/--no-grounded", default=True, show_default=True,
              help="Under the grammar, free-text strings may only copy runs of the request's words and numbers "
                   "may only be ones it writes, as in every training pair (adapter + grammar, the constrained "
                   "baseline, the guard).")
@click.option("--fresh", is_flag=True, help="Ignore the answers saved in the report directory; start again.")
@click.option("--progress", type=click.Choice(["auto", "bar", "lines", "none"]), default="auto",
              help="auto = a bar on a terminal, a plain line every 10% otherwise.")
@click.option("--batch-size", type=int, default=32, help="Answers decoded together (rows leave the batch as they finish).")
@click.option("--max-new-tokens", type=int, default=256, help="Answer length limit (truncation counts as failure).")
@click.option("--temperature", type=float, default=0.0, help="0 = greedy.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (shared out among --workers).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processes that decode, each with its own model: on a CPU, 2 one-thread processes answer "
                   "faster than 1 two-thread process.")
@click.option("--dtype", type=click.Choice(["auto", "bfloat16", "float32"]), default="auto",
              help="Model weights; auto = bfloat16 on CPUs with AVX512-BF16/AMX, else float32.")
def command(adapter: str, n: int, target: float | None, strict: bool, out: str | None, data: str | None,
            base: str | None, seed: int, hypothesis_share: float | None, raw_hypothesis: bool,
            inputs: tuple[str, ...], gate_on: str, baseline_n: int | None, no_baselines: bool,
            grammar_n: int | None, no_guard: bool, grounded: bool, fresh: bool, progress: str, batch_size: int,
            max_new_tokens: int, temperature: float, threads: int | None, workers: int, dtype: str) -> None:
    """Evaluate the adapter in ADAPTER: parse/validity/field accuracy with 95% intervals, the adapter free
    and under the schema's grammar, baselines, the guard (a constrained retry of invalid answers), gate.

    Answers are saved as they come (REPORT/answers.jsonl): an interrupted eval rerun with the same
    settings resumes. Exit 0 at or above --target, 1 below it, 2 on bad input.
    """
    from ..evaluate import check_target, evaluate

    check_target(target)
    report = evaluate(adapter, n=n, target=target, strict=strict, data=data, base=base, seed=seed,
                      hypothesis_share=hypothesis_share, baselines=not no_baselines, baseline_n=baseline_n,
                      grammar_n=grammar_n, guard=not no_guard, inputs=inputs, gate_on=gate_on,
                      batch_size=batch_size, max_new_tokens=max_new_tokens, temperature=temperature,
                      realistic=not raw_hypothesis, out_dir=out, progress=progress, threads=threads,
                      dtype=dtype, fresh=fresh, grounded=grounded, workers=workers)
    click.echo(report.text())
    click.echo(f"report: {report.out_dir}/report.md (json, png); summary: {adapter}/eval.json")
    if report.exit_code:
        click.get_current_context().exit(report.exit_code)
