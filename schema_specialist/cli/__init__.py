"""The `schemagen` click group: parse, call the library, print, map errors to exit codes. No logic.

Each module in this package that defines `command` (a click command) registers itself: add a file,
not a line here. Heavy imports (torch, transformers) stay inside the commands so `--help` is instant.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import click

from ..errors import SchemagenError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SchemagenError as exc:
            click.echo(f"schemagen: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("schemagen: interrupted; everything written so far is kept (rerun to resume)", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="schemagen")
def main() -> None:
    """schemagen: turn a JSON Schema into a LoRA format specialist.

    generate -> train -> eval, then check, serve and route.
    """


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cmd in getattr(module, "commands", [getattr(module, "command", None)]):
            if cmd is not None:
                main.add_command(cmd)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
