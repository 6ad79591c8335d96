"""`schemagen check` and `schemagen check-data`: pre-commit checks for schemas, datasets and adapters.

Exit codes: 0 clean, 1 problems found, 2 usage error or an input that cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import click

ENGINE_NAMES = ("outlines_core", "xgrammar", "llguidance")
MIB = 1024 * 1024


def _emit(reports: list, fmt: str, quiet: bool, strict: bool) -> None:
    from ..checks import exit_code, render_human, render_json

    text = render_json(reports, strict=strict) if fmt == "json" else render_human(reports, quiet=quiet, strict=strict)
    click.echo(text)
    ctx = click.get_current_context()
    ctx.exit(exit_code(reports, strict))


_format = click.option("--format", "fmt", type=click.Choice(["human", "json"]), default="human",
                       help="human: one line per finding; json: everything, for machines.")
_quiet = click.option("-q", "--quiet", is_flag=True, help="Only problems: no `ok` lines, no notes.")
_strict = click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
_max = click.option("--max-mib", type=click.FloatRange(min=0), default=5.0,
                    help="Refuse (unread) JSON files larger than this.")


@click.command("check")
@click.argument("schemas", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--no-compile", is_flag=True, help="Skip compiling with the constraint engines (fast; no tokenizer).")
@click.option("--engine", "engines", multiple=True, type=click.Choice(ENGINE_NAMES),
              help="Check only these engines (repeatable; default: all).")
@_format
@_quiet
@_strict
@_max
def check(schemas: tuple[Path, ...], no_compile: bool, engines: tuple[str, ...], fmt: str, quiet: bool,
          strict: bool, max_mib: float) -> None:
    """Check JSON Schema files (or directories of them) before they break generate, train or serve.

    Per file: metaschema of its own draft, local $ref resolution, remote $refs, regexes that do not
    compile or risk catastrophic backtracking, keywords nothing enforces, which keywords decoding
    leaves to validation, and whether outlines_core, xgrammar and llguidance compile it.
    A broken file never stops the others.
    """
    from ..checks.schemas import check_schema_files

    reports = check_schema_files(schemas, compile=not no_compile, engines=list(engines) or None,
                                 max_bytes=int(max_mib * MIB))
    if not reports:
        raise click.UsageError("no schema files found in the given directories")
    _emit(reports, fmt, quiet, strict)


@click.command("check-data")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--schema", "schema", type=click.Path(path_type=Path),
              help="Schema for bare .jsonl files that have no manifest.json beside them.")
@_format
@_quiet
@_strict
@_max
def check_data(paths: tuple[Path, ...], schema: Path | None, fmt: str, quiet: bool, strict: bool,
               max_mib: float) -> None:
    """Check generated datasets and trained adapters: every record valid, nothing stale.

    PATH is a dataset directory (or its manifest.json), a dataset .jsonl file, or an adapter directory
    (or its schemagen.json). Each problem names the file and line.
    """
    from ..checks.data import check_data_paths

    _emit(check_data_paths(paths, schema=schema, max_bytes=int(max_mib * MIB)), fmt, quiet, strict)


commands = [check, check_data]
