"""Checkpoints (trainable weights + optimizer + scheduler + RNG + loop state) and atomic directory writes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import SchemagenError

STATE = "state.json"
WEIGHTS = "trainable.safetensors"
OPTIM = "optimizer.pt"


@contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """OSError while writing -> one line (ENOSPC named plainly)."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise SchemagenError("no space left on device", path) from None
        raise SchemagenError(f"cannot write: {exc.strerror or exc}", path) from None


def write_dir_atomically(target: Path, fill: Callable[[Path], None]) -> None:
    """Build a directory next to `target` with `fill(tmp)`, then swap it in (readers see old or new)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    old: Path | None = None
    try:
        with disk_errors(target):
            fill(tmp)
            if target.exists():
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
            os.replace(tmp, target)
    except BaseException:
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def trainable_state(model: Any) -> dict[str, Any]:
    return {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(root: Path, step: int, model: Any, extra: dict[str, Any], meta: dict[str, Any],
                    keep: int) -> Path:
    """Write `root/step-NNNNNN/` atomically and prune all but the newest `keep`."""
    import torch
    from safetensors.torch import save_file

    target = root / f"step-{step:07d}"

    def fill(tmp: Path) -> None:
        save_file(trainable_state(model), str(tmp / WEIGHTS))
        torch.save(extra, tmp / OPTIM)
        (tmp / STATE).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    write_dir_atomically(target, fill)
    for stale in list_checkpoints(root)[:-max(keep, 1)]:
        shutil.rmtree(stale, ignore_errors=True)
    return target


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / STATE).is_file() and (p / OPTIM).is_file())


def load_checkpoint(path: Path, model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copy the saved trainable weights into `model`; returns (meta, optimizer/scheduler/RNG states)."""
    import torch
    from safetensors.torch import load_file

    try:
        meta = json.loads((path / STATE).read_text(encoding="utf-8"))
        weights = load_file(str(path / WEIGHTS))
        extra = torch.load(path / OPTIM, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SchemagenError(f"unreadable checkpoint ({' '.join(str(exc).split())[:120]}); "
                             "pass --overwrite to restart", path) from None
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            if name not in params:
                raise SchemagenError(f"checkpoint does not fit this model ({name}); pass --overwrite", path)
            params[name].copy_(tensor.to(params[name].device))
    return meta, extra
