"""The adapter registry: a directory of `schemagen train` outputs, read without loading any weights.

Each adapter is a direct subdirectory holding `adapter_config.json`, `adapter_model.safetensors` and
`schemagen.json`; `eval.json` (written by `schemagen eval`) is optional. Pickled weights
(`adapter_model.bin`) are refused, names are checked, and nothing outside the registry is followed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SchemagenError
from .schema import schema_hash

ADAPTER_FORMAT = "schemagen-adapter/1"
CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
PICKLED = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth", "adapter_model.ckpt")
META = "schemagen.json"
EVAL = "eval.json"
DEFAULT_DIR = "adapters"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str) -> str:
    """An adapter name as given by a user or a request: no path separators, no `..`, no odd characters."""
    if not isinstance(name, str) or not name:
        raise SchemagenError("adapter name must be a non-empty string")
    if ".." in name or "/" in name or "\\" in name or not _NAME.match(name):
        raise SchemagenError(
            f"invalid adapter name {name[:80]!r} (letters, digits, '.', '_', '-'; no '..', '/' or '\\')")
    return name


@dataclass
class AdapterInfo:
    """One registry entry: where it is, what schema it serves, what base it needs, how it scored."""

    name: str
    path: Path
    schema: dict[str, Any] | None = None
    schema_sha256: str = ""
    schema_title: str = ""
    base_model: str = ""
    base_model_path: str = ""
    peft_type: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] | None = None
    problem: str | None = None  # why it cannot be served; None when it can

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def validity(self) -> float | None:
        v = (self.eval or {}).get("validity")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def validity_text(self) -> str:
        """'0.950 (n=200, ci95 0.91-0.97)' from eval.json, '-' without one."""
        if self.validity is None:
            return "-"
        ev = self.eval or {}
        text = f"{self.validity:.3f}"
        extra = []
        if isinstance(ev.get("n"), int):
            extra.append(f"n={ev['n']}")
        ci = ev.get("ci95")
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
            extra.append(f"ci95 {ci[0]:.2f}-{ci[1]:.2f}")
        return f"{text} ({', '.join(extra)})" if extra else text

    def to_dict(self) -> dict[str, Any]:
        ev = self.eval or {}
        return {
            "name": self.name, "path": str(self.path), "schema_title": self.schema_title,
            "schema_sha256": self.schema_sha256, "base_model": self.base_model,
            "base_model_path": self.base_model_path, "validity": self.validity,
            "n": ev.get("n") if self.eval else None, "ci95": ev.get("ci95") if self.eval else None,
            "ok": self.ok, "problem": self.problem,
        }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SchemagenError(f"cannot read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                             path) from None


def inside(root: Path, path: Path) -> bool:
    """Whether `path` (symlinks resolved) is a direct subdirectory of `root` (resolved)."""
    try:
        return path.resolve().parent == root.resolve()
    except OSError:
        return False


def read_adapter(root: Path, name: str) -> AdapterInfo:
    """Read one adapter's metadata; problems land in `.problem`, never an exception for a bad entry."""
    check_name(name)
    path = root / name
    info = AdapterInfo(name=name, path=path)
    if not path.is_dir() or not inside(root, path):
        info.problem = "not a subdirectory of the registry"
        return info
    pickled = [p for p in PICKLED if (path / p).exists()]
    if pickled:
        info.problem = f"{pickled[0]} refused (pickled weights): only {WEIGHTS} is loaded"
    elif not (path / WEIGHTS).is_file() or not inside(path, path / WEIGHTS):
        info.problem = f"no {WEIGHTS}"
    elif not (path / CONFIG).is_file():
        info.problem = f"no {CONFIG}"
    elif not (path / META).is_file():
        info.problem = f"no {META} (not made by `schemagen train`)"
    try:
        if (path / META).is_file():
            meta = _read_json(path / META)
            if not isinstance(meta, dict):
                raise SchemagenError(f"{META} is not a JSON object", path)
            info.meta = meta
            schema = meta.get("schema")
            if isinstance(schema, dict):
                info.schema = schema
                info.schema_sha256 = schema_hash(schema)
                stated = meta.get("schema_sha256")
                if stated and stated != info.schema_sha256 and info.problem is None:
                    info.problem = f"{META}: schema_sha256 does not match its schema"
            elif info.problem is None:
                info.problem = f"{META} has no schema object"
            info.schema_title = str(meta.get("schema_title") or (info.schema or {}).get("title") or "")
            info.base_model = str(meta.get("base_model") or "")
            info.base_model_path = str(meta.get("base_model_path") or "")
        if (path / CONFIG).is_file():
            config = _read_json(path / CONFIG)
            if not isinstance(config, dict):
                raise SchemagenError(f"{CONFIG} is not a JSON object", path)
            info.peft_type = str(config.get("peft_type") or "")
            if not info.base_model_path and not info.base_model:
                info.base_model = str(config.get("base_model_name_or_path") or "")
            if info.peft_type.upper() != "LORA" and info.problem is None:
                info.problem = f"{CONFIG}: peft_type {info.peft_type or '(none)'!r} is not LORA"
        if (path / EVAL).is_file():
            ev = _read_json(path / EVAL)
            info.eval = ev if isinstance(ev, dict) else None
    except SchemagenError as exc:
        info.problem = info.problem or str(exc)
    return info


def scan(directory: str | Path = DEFAULT_DIR) -> list[AdapterInfo]:
    """Every adapter-looking subdirectory of `directory`, sorted by name (problems included)."""
    root = Path(directory)
    if not root.exists():
        raise SchemagenError("no such adapters directory", root)
    if not root.is_dir():
        raise SchemagenError("not a directory", root)
    found = []
    for sub in sorted(root.iterdir(), key=lambda p: p.name):
        if sub.name.startswith(".") or not sub.is_dir():
            continue
        if not any((sub / f).exists() for f in (CONFIG, META, WEIGHTS, *PICKLED)):
            continue  # not an adapter (a scratch dir, a checkpoint folder)
        try:
            check_name(sub.name)
        except SchemagenError as exc:
            found.append(AdapterInfo(name=sub.name, path=sub, problem=str(exc)))
            continue
        found.append(read_adapter(root, sub.name))
    return found


def write_meta(path: str | Path, name: str, schema: dict[str, Any], base_model: str,
               base_model_path: str | Path | None = None, **extra: Any) -> Path:
    """Write a minimal `schemagen.json` next to saved adapter weights (tests, benchmarks, hand-made adapters)."""
    import datetime as _dt

    from .dataset import atomic_write_json

    path = Path(path)
    meta = {"format": ADAPTER_FORMAT, "name": name, "schema_sha256": schema_hash(schema), "schema": schema,
            "schema_title": str(schema.get("title") or name), "base_model": base_model,
            "base_model_path": str(base_model_path or base_model),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), **extra}
    atomic_write_json(path / META, meta)
    return path / META
