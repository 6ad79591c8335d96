"""`eval --workers N`: answer a share of the inputs in other processes, each with its own model and log.

On a CPU, two one-thread processes decode more answers a second than one two-thread process. Each
system's unanswered inputs are dealt out round-robin; share 0 stays in the calling process, the others
go to spawned workers. A worker appends its answers (fsynced) to `workers/<k>/answers.jsonl` under the
report directory, with the main log's settings header. When the workers finish, and at the start of a
rerun after a kill, those logs are merged into the main `answers.jsonl` and removed, so no answer is lost
and none is counted twice.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from .inputs import Item, unique_items
from .resume import NAME, AnswerLog

WORKERS_DIR = "workers"
Plan = list[tuple[str, list[Item]]]


@dataclass
class Job:
    """What one worker process answers, how it decodes, and where it writes."""

    adapter_dir: str
    data: str | None
    base: str | None
    settings: dict[str, Any]  # the main log's header: the merge checks it
    log_dir: str
    plan: Plan
    max_new_tokens: int
    temperature: float
    seed: int
    threads: int
    dtype: str
    grounded: bool | str
    batch_size: int


def threads_each(threads: int | None, workers: int) -> int:
    """Torch threads for each of `workers` processes sharing `threads` (None: every core)."""
    return max(1, (threads or os.cpu_count() or 1) // workers)


def deal(plan: Plan, answered: Callable[[str, Item], bool], workers: int) -> list[Plan]:
    """Each system's unanswered inputs dealt round-robin into `workers` shares (share 0: this process)."""
    shares: list[Plan] = [[] for _ in range(workers)]
    for name, items in plan:
        pending = [it for it in unique_items(items) if not answered(name, it)]
        for k in range(workers):
            if pending[k::workers]:
                shares[k].append((name, pending[k::workers]))
    return shares


def merge(log: AnswerLog, root: Path, settings: dict[str, Any], items: dict[str, Item]) -> int:
    """Move the answers in `root/workers/*` into `log` (first answer kept), then remove those logs."""
    folder = root / WORKERS_DIR
    if not folder.is_dir():
        return 0
    moved = 0
    for directory in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (directory / NAME).is_file():
            wlog = AnswerLog(directory, settings)  # other settings: it starts empty and nothing moves
            try:
                for (system, key), gen in wlog.answers.items():
                    it = items.get(key)
                    if it is not None and log.get(system, it) is None:
                        log.add(system, it, gen, wlog.engines.get(system))
                        moved += 1
            finally:
                wlog.close()
        shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
    return moved


def run_job(job: Job, progress: Any) -> None:
    """A worker process: load the model once, answer its share, append each batch to its own log."""
    from ..quiet import quiet_libraries
    from .api import run_system
    from .metrics import ADAPTER_GRAMMAR, CONSTRAINED
    from .runner import ModelRunner, load_adapter_meta

    try:
        with quiet_libraries():
            info = load_adapter_meta(job.adapter_dir, job.data, job.base)
            runner = ModelRunner(info, max_new_tokens=job.max_new_tokens, temperature=job.temperature,
                                 seed=job.seed, threads=job.threads, dtype=job.dtype, grounded=job.grounded)
            runner.on_row = progress.put
            log = AnswerLog(job.log_dir, job.settings)
            try:
                for name, items in job.plan:  # a new log: `merge` removed any earlier one
                    engine = None
                    if name in (ADAPTER_GRAMMAR, CONSTRAINED):
                        try:
                            engine = runner.engine_label()
                        except SchemagenError:  # the calling process meets the same error and reports it
                            progress.put(len(items))
                            continue

                    def keep(batch: Sequence[Item], out: list[Any], name: str = name,
                             engine: str | None = engine) -> None:
                        for it, g in zip(batch, out, strict=True):
                            log.add(name, it, g, engine)

                    run_system(runner.generator_for(name), items, job.batch_size, None, keep)
            finally:
                log.close()
    except SchemagenError as exc:
        progress.put(("error", str(exc)))
        raise SystemExit(2) from None
    except Exception as exc:  # anything else: one line for the calling process to report
        progress.put(("error", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"))
        raise SystemExit(1) from None


class Pool:
    """The spawned workers of one eval: started at once, drained for progress, joined at the end."""

    def __init__(self, jobs: list[Job], on_rows: Callable[[int], None]) -> None:
        ctx = mp.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
        self.queue: Any = ctx.Queue()
        self.on_rows = on_rows
        self.errors: list[str] = []
        self.procs = [ctx.Process(target=run_job, args=(job, self.queue), daemon=True) for job in jobs]
        for p in self.procs:
            p.start()

    def drain(self) -> None:
        """Pass on the rows the workers finished since the last call; keep their error lines."""
        while True:
            try:
                msg = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(msg, tuple):
                self.errors.append(str(msg[1]))
            else:
                self.on_rows(int(msg))

    def wait(self) -> None:
        """Block until every worker exits; a failed worker is one SchemagenError line."""
        for p in self.procs:
            while p.is_alive():
                p.join(timeout=0.2)
                self.drain()
        self.drain()
        failed = [(k + 1, p.exitcode) for k, p in enumerate(self.procs) if p.exitcode != 0]
        if failed:
            k, code = failed[0]
            why = self.errors[0] if self.errors else f"exit code {code}"
            raise SchemagenError(f"eval worker {k} failed: {why} (its answers so far are kept; rerun to resume)")

    def stop(self) -> None:
        """End workers still running (the calling process failed or was interrupted)."""
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
