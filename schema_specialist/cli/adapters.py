"""`schemagen adapters list [DIR]`: the adapter registry, read without loading any weights."""

from __future__ import annotations

import json

import click


@click.group("adapters")
def command() -> None:
    """Inspect a directory of trained adapters (the registry `schemagen serve` routes over)."""


@command.command("list")
@click.argument("directory", default="adapters", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", help="Output format.")
def list_adapters(directory: str, fmt: str) -> None:
    """Name, schema title, schema hash, base model and last eval validity of each adapter in DIRECTORY."""
    from ..registry import scan

    infos = scan(directory)
    if fmt == "json":
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    if not infos:
        click.echo(f"no adapters in {directory}")
        return
    rows = [("NAME", "SCHEMA", "HASH", "BASE", "VALIDITY")]
    for i in infos:
        validity = i.validity_text() if i.ok else f"refused: {i.problem}"
        rows.append((i.name, i.schema_title or "-", i.schema_sha256[:12] or "-", i.base_model or "-", validity))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
