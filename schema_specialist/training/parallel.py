"""Data-parallel training on CPU: N one-thread processes share every optimizer step's micro-batches.

On a small CPU two one-thread processes do more work than one two-thread process (the matmuls of a 135M
model are too small to keep two threads busy). Rank 0 is the calling process: it logs, checkpoints and
writes the adapter. Ranks 1.. are spawned; each loads the same base model and data and takes micro-batches
`rank, rank + N, ...` of each step's group. The gradients are summed over ranks (gloo, one flat buffer)
before clipping, so every rank takes the same optimizer step the one-process loop would take: the same
examples per step, the same answer-token normalisation, the same schedule (tests/test_train.py)."""

from __future__ import annotations

import datetime as _dt
import os
import queue
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from .memory import limit_heap_growth

TIMEOUT = _dt.timedelta(minutes=30)  # a collective that waits longer than this fails the run
START_TIMEOUT_S = 600.0  # a rank that has not loaded its model by then is a failed start


def auto_procs(requested: int, threads: int, cores: int, grad_accum: int, device: str) -> tuple[int, int]:
    """(processes, torch threads each) within a budget of `threads` cores (0: every core).

    `requested` 0 = one process per core of the budget; never more processes than a step has
    micro-batches (`grad_accum`), and one process on a GPU."""
    budget = threads or cores
    if device != "cpu":
        return 1, budget
    procs = max(1, min(requested or budget, grad_accum))
    return procs, max(1, budget // procs)


@dataclass
class Comm:
    """The collectives the loop needs, over a gloo process group of `world` ranks."""

    rank: int
    world: int

    def sum_grads(self, params: list[Any]) -> None:
        """Sum every parameter's gradient over the ranks, in place (a rank without a batch adds zeros)."""
        import torch
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).float() for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.dtype)
            offset += n

    def sum_floats(self, *values: float) -> list[float]:
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return [float(v) for v in t]

    def broadcast_params(self, params: list[Any]) -> None:
        """Every rank starts from rank 0's trainable weights."""
        import torch.distributed as dist

        for p in params:
            dist.broadcast(p.data, src=0)

    def broadcast_object(self, obj: Any) -> Any:
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_group(store: Path, rank: int, world: int) -> Comm:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=TIMEOUT)
    return Comm(rank, world)


def close_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


@dataclass
class WorkerSpec:
    """What a spawned rank needs to build the same run as rank 0 (all picklable)."""

    rank: int
    world: int
    store: str
    dataset_dir: str
    recipe: dict[str, Any]
    threads: int
    resume_from: str | None
    checkpoint_dir: str


@dataclass
class Ranks:
    """The spawned ranks 1..N-1 of a run, and the rendezvous they meet rank 0 at."""

    world: int
    procs: list[Any] = field(default_factory=list)
    status: Any = None
    tmp: Path | None = None

    @property
    def store(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "store"

    def start(self, dataset_dir: Path, recipe: dict[str, Any], threads: int, resume_from: Path | None,
              checkpoint_dir: Path) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.tmp = Path(tempfile.mkdtemp(prefix="schemagen-ddp-"))
        self.status = ctx.Queue()
        for rank in range(1, self.world):
            spec = WorkerSpec(rank, self.world, str(self.store), str(dataset_dir), recipe, threads,
                              str(resume_from) if resume_from is not None else None, str(checkpoint_dir))
            proc = ctx.Process(target=_worker, args=(spec, self.status), daemon=True, name=f"schemagen-rank{rank}")
            proc.start()
            self.procs.append(proc)

    def wait_ready(self) -> None:
        """Block until every spawned rank has loaded its model and data; a rank's failure is one line."""
        import time

        ready: set[int] = set()
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(ready) < len(self.procs):
            try:
                rank, message = self.status.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self.procs if not p.is_alive()]
                if dead:
                    raise SchemagenError(f"training process {dead[0].name} exited ({dead[0].exitcode}) "
                                         "before it was ready") from None
                if time.monotonic() > deadline:
                    raise SchemagenError("a training process did not load the model in time") from None
                continue
            if message != "ready":
                raise SchemagenError(f"training process rank {rank}: {message}")
            ready.add(rank)

    def stop(self, finished: bool) -> None:
        """Join the ranks (`finished`: they end with rank 0's last collective), else stop them now."""
        for proc in self.procs:
            proc.join(timeout=10 if finished else 0.1)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _worker(spec: WorkerSpec, status: Any) -> None:
    """A spawned rank: build the same run, meet rank 0, resume where it resumed, train quietly."""
    import torch

    from . import api

    torch.set_num_threads(spec.threads)
    limit_heap_growth()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        recipe = api.make_recipe(spec.recipe)
        run = api.load_run(Path(spec.dataset_dir), recipe, Path(spec.resume_from) if spec.resume_from else None)
        status.put((spec.rank, "ready"))
    except SchemagenError as exc:
        status.put((spec.rank, str(exc)))
        return
    except Exception as exc:  # any other failure still reaches rank 0 as one line
        status.put((spec.rank, traceback.format_exception_only(type(exc), exc)[-1].strip()))
        return
    comm = init_group(Path(spec.store), spec.rank, spec.world)
    try:
        loop = api.make_loop(run, recipe, Path(spec.checkpoint_dir), comm=comm, log=lambda m: None)
        loop.resume()
        loop.run()
    finally:
        close_group()
