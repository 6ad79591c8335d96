"""`schemagen generate`: synthetic question -> perfect-JSON pairs for a schema."""

from __future__ import annotations

import click


@click.command("generate")
@click.argument("schema", type=click.Path(dir_okay=False, path_type=str))
@click.option("-n", "n", type=int, default=None,
              help="Pairs in all (train+val+test, 80/10/10) [default: 600; with --inputs, the inputs alone]. "
                   "Inputs come first; synthetic pairs top up to N. A rerun or --focus: N is the new total.")
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Output directory [default: generated/<schema-stem>].")
@click.option("--teacher", default="smollm2",
              help="smollm2 (embedded), a local model dir, an offline-cached id, or openai:URL#MODEL.")
@click.option("--engine", type=click.Choice(["auto", "xgrammar", "llguidance", "outlines_core"]), default="auto",
              help="Constrained-decoding engine; auto picks per schema the one that compiles and enforces most.")
@click.option("--seed", type=int, default=0, help="Makes a run reproducible.")
@click.option("--batch-size", type=int, default=32, help="Prompts decoded together per worker (1 = one stream).")
@click.option("--dtype", type=click.Choice(["auto", "bfloat16", "float32"]), default="auto",
              help="Teacher weights; auto = bfloat16 on CPUs with AVX512-BF16/AMX, else float32.")
@click.option("--temperature", type=float, default=1.0, help="Teacher sampling temperature.")
@click.option("--max-new-tokens", type=int, default=320, help="Cap on one instance's tokens.")
@click.option("--max-candidates", type=int, default=None, help="Candidate budget [default: 4n+64].")
@click.option("--time-budget", type=float, default=None, help="Stop after this many seconds (resumable).")
@click.option("--workers", type=int, default=0,
              help="Local teacher processes of 1 thread each [default 0: one per CPU core; 1 on CUDA].")
@click.option("--threads", type=int, default=None, help="torch threads of a single in-process teacher.")
@click.option("--allow-remote-refs", is_flag=True, help="Allow $ref to http(s) URLs (network access).")
@click.option("--balance/--no-balance", default=True, show_default=True,
              help="Draw enum and boolean values again uniformly (a small teacher favours the first option).")
@click.option("--vary-shape/--no-vary-shape", default=True, show_default=True,
              help="Draw list lengths uniformly (items from other pairs), start some free text in lowercase and "
                   "lengthen some (a small teacher writes one item, in two capitalised words).")
@click.option("--lengthen", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="With --vary-shape: chance that a free-text string gets the words of another pair's string "
                   "added (varied span lengths to copy; 0.3 lost fields and validity on the dev schema).")
@click.option("--phrases", type=click.FloatRange(0, 1), default=0.6, show_default=True,
              help="Chance that a free-text string is swapped for a drawn phrase of 1-8 words, or at times an "
                   "identifier (English word lists and the teacher's words): a small teacher writes two words.")
@click.option("--vary-numbers/--no-vary-numbers", default=False, show_default=True,
              help="Draw a number again where it fills more than a tenth of its field's values (or its size "
                   "more than 1.5x a flat draw's share), at the sizes of real data: a small teacher writes 1 "
                   "for most fractions and 0 for most counts. Off: it lost on both dev schemas.")
@click.option("--shuffle-fields", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of questions that state the top-level fields in a random order (the answer follows "
                   "the question's order; eval renders its property-based questions the same way).")
@click.option("--plausible/--no-plausible", default=True, show_default=True,
              help="Reject candidates whose free-text strings are debris or placeholders ('./135', 'Task').")
@click.option("--prose-share", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="Share of questions written in prose (values inside sentences, labels paraphrased or left "
                   "out); the rest use the labelled list styles.")
@click.option("--fill-optional", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Top of the chance (drawn per instance, uniform below it) that an optional property the "
                   "teacher left out is added as another accepted instance had it, so instances range from "
                   "one field to the whole schema; 0 keeps the teacher's.")
@click.option("--drop-optional", type=click.FloatRange(0, 1), default=0.25, show_default=True,
              help="Chance that each optional property is left out of an instance.")
@click.option("--widen", type=click.FloatRange(0, 1), default=0.15, show_default=True,
              help="Chance that a free-text string gets codes among its words ('Q3', '4821', 'x7Kq').")
@click.option("--widen-dates", type=click.FloatRange(0, 1), default=0.15, show_default=True,
              help="Chance that a date or date-time gets its year drawn again over 1900-2099: a small teacher "
                   "dates everything 2017-2023, and its student then rewrote 1933 as 2020.")
@click.option("--inputs", "inputs", multiple=True, type=click.Path(dir_okay=False, path_type=str),
              help="Your own requests to label first (repeatable): one a line (.txt), or JSONL (.jsonl) "
                   "{\"question\": ..., \"answer\": ...?}. The teacher answers each under the schema's "
                   "grammar; an answer is kept when it validates and every value is stated in the request "
                   "(a file's own answer is validated and kept as is). A rerun answers only new requests.")
@click.option("--focus", type=click.Path(path_type=str), default=None,
              help="An eval report.json (or its directory): extend the dataset in -o toward what failed "
                   "(failing field paths, values and question styles). New pairs go to train/val; "
                   "test.jsonl stays the fixed held-out set.")
@click.option("--focus-share", type=click.FloatRange(0, 1), default=0.75, show_default=True,
              help="With --focus: share of new candidates bent toward a failing path (and of styles drawn).")
@click.option("--paraphrase", type=click.FloatRange(0, 1), default=None,
              help="Share of template questions the teacher rewrites freely as a person would; a rewrite is "
                   "kept only when every value of the answer is still stated in it (else the template stays) "
                   "[default: 0.25 with --teacher openai:..., 0 with a local teacher].")
@click.option("--overwrite", is_flag=True, help="Start again instead of resuming.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(schema: str, n: int | None, out: str | None, teacher: str, engine: str, seed: int, batch_size: int,
            dtype: str, temperature: float, max_new_tokens: int, max_candidates: int | None, time_budget: float | None,
            workers: int, threads: int | None, allow_remote_refs: bool, balance: bool, vary_shape: bool, lengthen: float,
            phrases: float, vary_numbers: bool, shuffle_fields: float,
            plausible: bool, prose_share: float, fill_optional: float, drop_optional: float, widen: float,
            widen_dates: float, inputs: tuple[str, ...],
            focus: str | None, focus_share: float, paraphrase: float | None, overwrite: bool, quiet: bool) -> None:
    """Write question -> JSON pairs for SCHEMA (resumes an interrupted run)."""
    from ..generate import GenerateConfig, default_out_dir, generate
    from ..generate.pipeline import DEFAULT_PAIRS
    from ..schema import load_schema

    if n is None:
        n = 0 if inputs else DEFAULT_PAIRS
    cfg = GenerateConfig(n=n, seed=seed, teacher=teacher, engine=engine, batch_size=batch_size, dtype=dtype,
                         temperature=temperature, max_new_tokens=max_new_tokens, max_candidates=max_candidates,
                         overwrite=overwrite, allow_remote_refs=allow_remote_refs, threads=threads, workers=workers,
                         progress=not quiet, time_budget=time_budget, balance=balance, vary_shape=vary_shape,
                         lengthen=lengthen, phrases=phrases, vary_numbers=vary_numbers,
                         shuffle_fields=shuffle_fields, plausible=plausible, prose_share=prose_share,
                         fill_optional=fill_optional, drop_optional=drop_optional, widen=widen,
                         widen_dates=widen_dates, inputs=list(inputs), focus=focus,
                         focus_share=focus_share, paraphrase=paraphrase)
    target = out or str(default_out_dir(load_schema(schema, allow_remote=allow_remote_refs)))
    m = generate(schema, target, cfg)
    c = m["counts"]
    total = f"{c['accepted']}/{m['requested']}" if m["requested"] else str(c["accepted"])
    click.echo(f"{target}: {total} pairs (train {c['train']}, val {c['val']}, "
               f"test {c['test']}), rejected {c['rejected']}, acceptance {m['acceptance_rate']}, "
               f"faithfulness {m['faithfulness']['rate']}, engine {m['engine']['name']}, "
               f"{m['pairs_per_minute']} pairs/min")
    if m.get("inputs"):
        i = m["inputs"]
        reasons = ", ".join(f"{k} {v}" for k, v in i["rejected_by_reason"].items())
        click.echo(f"inputs: {i['accepted']} labelled ({i['answered_by_teacher']} by the teacher, "
                   f"{i['answers_from_file']} from the file), {i['rejected']} rejected"
                   + (f" ({reasons})" if reasons else "") + " -- see rejected.jsonl")
    if m.get("paraphrase"):
        p = m["paraphrase"]
        reasons = ", ".join(f"{k} {v}" for k, v in p["rejected_by_reason"].items())
        click.echo(f"paraphrase: {p['kept']}/{p['asked']} rewrites kept" + (f" (refused: {reasons})" if reasons else ""))
    if focus and m.get("focus"):
        r = m["focus"][-1]
        click.echo(f"focus: {r['pairs']} new pairs, leaning on {', '.join(x['path'] for x in r['paths'][:5])}")
    if not m["complete"]:
        click.echo("budget spent before -n was reached; rerun to continue or raise --max-candidates", err=True)
