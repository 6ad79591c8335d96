"""The one exception type for user errors: a one-line message, mapped to exit code 2 by the CLI."""

from __future__ import annotations

from pathlib import Path


class SchemagenError(Exception):
    """A user error (bad schema, bad input file, missing model): one line, no traceback."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        text = " ".join(str(message).split())
        super().__init__(f"{self.path}: {text}" if self.path else text)
