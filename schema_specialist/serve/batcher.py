"""The request batcher: one thread decodes every admitted request in one batch, another prefills.

Requests wait in a bounded queue. When the batch is idle, the first arrival waits `gather_ms` for
others (up to `max_batch`); while the batch runs, arrivals join it between steps. Rows of different
adapters, base rows and grammar rows share the batch (`continuous.ContinuousBatch`); each leaves when
it ends, and a strict retry re-enters at the head of the queue. Cancelled and expired requests leave
at the next step. A full queue refuses new requests (`QueueFullError`, with a Retry-After estimate).

With `prefill_thread` (the default) a second thread prefills the joining requests' prompts while the
batch decodes, up to `PREFILL_AHEAD` requests past a full batch, so a join costs the decoding thread
only the copy of the prompt's cache into the batch. Without it, the decoding thread prefills between
its steps, and every row waits.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .jobs import (
    CancelledError,
    InternalError,
    Job,
    QueueFullError,
    RequestTimeoutError,
    ServerClosedError,
)
from .prefix import PrefixCache

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 16
DEFAULT_GATHER_MS = 5.0
DEFAULT_MAX_QUEUE = 256
PREFILL_AHEAD = 1  # requests prefilled past a full batch, ready to join the moment a row leaves
# With two threads on the model, each waits for the GIL after every torch op while the other runs the
# Python between its ops: up to the switch interval (5 ms by default) each time. A shorter interval
# (set when the prefill thread starts, never raised) cut a 16-row step beside a running prefill from
# 83 to 73 ms (alone: 50-65 ms), and the prefill from 191 to 168 ms (alone: 160 ms).
SWITCH_INTERVAL = 2e-4


class _Ready:
    """Prefilled requests waiting to join the batch: their jobs, rows and `prefill` parts."""

    def __init__(self, jobs: list[Job], rows: list[Any], parts: list[Any]) -> None:
        self.jobs, self.rows, self.parts = jobs, rows, parts


class Batcher:
    """A decoding thread over one model; `submit` jobs from any thread."""

    def __init__(self, model: Any, *, stop_ids: set[int], pad_id: int, max_batch: int = DEFAULT_MAX_BATCH,
                 gather_ms: float = DEFAULT_GATHER_MS, max_queue: int = DEFAULT_MAX_QUEUE,
                 forward: Callable[..., Any] | None = None, lock: Any = None,
                 prefix_cache: PrefixCache | None = None, grow_cache: bool = False,
                 prefill_thread: bool = True) -> None:
        from .continuous import ContinuousBatch

        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be positive")
        self.max_batch, self.max_queue, self.gather_s = max_batch, max_queue, max(0.0, gather_ms) / 1e3
        self.prefix_cache = prefix_cache
        self._new_batch = lambda: ContinuousBatch(model, stop_ids=stop_ids, pad_id=pad_id, forward=forward,
                                                  prefix_cache=prefix_cache, grow_cache=grow_cache)
        self.batch = self._new_batch()
        self.lock = lock or threading.RLock()  # held for each step: hold it to pause decoding
        self.prefill_lock = threading.RLock()  # held for each prefill (`paused` holds both)
        self.prefill_thread = prefill_thread
        self._cond = threading.Condition()
        self._waiting: collections.deque[Job] = collections.deque()
        self._ready: collections.deque[_Ready] = collections.deque()
        self._running: set[Job] = set()  # taken from the queue: prefilling, ready, or in the batch
        self._thread: threading.Thread | None = None
        self._prefiller: threading.Thread | None = None
        self._closed = False
        self.served = 0
        self.cancelled = 0
        self.timed_out = 0
        self.steps = 0
        self.rows_stepped = 0
        self.max_rows = 0  # the most rows one step decoded together
        self.prefill_seconds = 0.0  # time spent prefilling joining rows (on the prefill thread, if any)
        self.join_seconds = 0.0  # time the decoding thread spent putting prefilled rows into the batch
        self.step_seconds = 0.0  # time spent in decoding steps (choosing tokens, the forward pass)
        self._job_seconds = 0.0  # EWMA of one job's time in the batch (Retry-After estimates)

    # -- callers ----------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue a job; raises QueueFullError or ServerClosedError at once instead of queueing."""
        with self._cond:
            if self._closed:
                raise ServerClosedError("the server is shutting down")
            if len(self._waiting) + len(self._running) >= self.max_queue:
                raise QueueFullError(f"queue full ({self.max_queue} requests)", self.retry_after())
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="schemagen-batcher", daemon=True)
                self._thread.start()
                if self.prefill_thread:
                    if sys.getswitchinterval() > SWITCH_INTERVAL:
                        sys.setswitchinterval(SWITCH_INTERVAL)
                    self._prefiller = threading.Thread(target=self._prefill_loop, name="schemagen-prefill",
                                                       daemon=True)
                    self._prefiller.start()
            self._cond.notify_all()

    def cancel(self, job: Job) -> None:
        """The client went away: the job leaves the queue or the batch at the next step."""
        job.cancelled = True
        with self._cond:
            self._cond.notify_all()

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained by one batch's worth (at least 1)."""
        per = self._job_seconds or 1.0
        waves = (len(self._waiting) + len(self._running)) / self.max_batch
        return max(1, min(120, math.ceil(per * max(1.0, waves))))

    def stats(self) -> dict[str, Any]:
        return {"waiting": len(self._waiting), "running": len(self._running), "max_batch": self.max_batch,
                "prefill_thread": self.prefill_thread,
                "max_queue": self.max_queue, "served": self.served, "cancelled": self.cancelled,
                "timed_out": self.timed_out, "steps": self.steps, "rows_stepped": self.rows_stepped,
                "max_rows_per_step": self.max_rows,
                "mean_rows_per_step": round(self.rows_stepped / self.steps, 2) if self.steps else 0.0,
                "prefill_seconds": round(self.prefill_seconds, 3), "join_seconds": round(self.join_seconds, 3),
                "step_seconds": round(self.step_seconds, 3),
                "alive": self.alive,
                "prefix_cache": self.prefix_cache.stats() if self.prefix_cache is not None else None}

    @property
    def alive(self) -> bool:
        threads = [t for t in (self._thread, self._prefiller) if t is not None]
        return not self._closed and all(t.is_alive() for t in threads)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No decoding step and no prefill runs inside this block (tests; a maintenance pause)."""
        with self.prefill_lock, self.lock:
            yield

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new jobs, fail the queued and running ones, stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in (self._thread, self._prefiller):
            if thread is not None:
                thread.join(timeout)

    # -- the decoding and prefill threads --------------------------------------------------------

    def _take(self, limit: int) -> list[Job] | None:
        """Jobs to prefill now, at most `limit` in flight (blocking while there is nothing to do or no room);
        None once closed."""
        with self._cond:
            while not self._closed and (not self._waiting or len(self._running) >= limit) and \
                    (self.prefill_thread or not len(self.batch)):
                self._cond.wait()
            if self._closed:
                return None
            if not self._running and self.gather_s > 0 and len(self._waiting) < self.max_batch:
                until = time.monotonic() + self.gather_s
                while not self._closed and len(self._waiting) < self.max_batch:
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            admit: list[Job] = []
            now = time.monotonic()
            while self._waiting and len(self._running) < limit and len(admit) < self.max_batch:
                job = self._waiting.popleft()
                if job.cancelled or job.expired(now):
                    self._settle(job, "in the queue")
                else:
                    admit.append(job)
                    self._running.add(job)
            # The queue's tail may hold cancelled or expired jobs too: settle them now.
            for job in [j for j in self._waiting if j.cancelled or j.expired(now)]:
                self._waiting.remove(job)
                self._settle(job, "in the queue")
            return admit

    def _prefill(self, jobs: list[Job]) -> list[_Ready]:
        """Prefill `jobs` (holding `prefill_lock`): one ready unit a job, or one for the group."""
        jobs = self._still_wanted(jobs)  # the lock may have been held (paused) meanwhile
        if not jobs:
            return []
        rows = [job.row() for job in jobs]
        t0 = time.perf_counter()
        parts = self.batch.prefill(rows)
        self.prefill_seconds += time.perf_counter() - t0
        if len(parts) == len(rows):
            return [_Ready([j], [r], [p]) for j, r, p in zip(jobs, rows, parts, strict=True)]
        return [_Ready(jobs, rows, parts)]

    def _prefill_or_fail(self, jobs: list[Job], lock: Any) -> list[_Ready]:
        """`_prefill` holding `lock`; a bug in prefilling fails these jobs only (no units), and serving goes on."""
        try:
            with lock:
                return self._prefill(jobs)
        except Exception as exc:
            log.exception("prefill failed")
            self._fail(jobs, InternalError(f"prefill failed: {type(exc).__name__}"))
            return []

    def _prefill_loop(self) -> None:
        """The prefill thread: queued jobs -> ready units, while the decoding thread steps."""
        while True:
            jobs = self._take(self.max_batch + PREFILL_AHEAD)
            if jobs is None:
                break
            units = self._prefill_or_fail(jobs, self.prefill_lock)
            with self._cond:
                self._ready.extend(units)
                self._cond.notify_all()

    def _joining(self) -> list[_Ready] | None:
        """Ready units that fit in the batch now (blocking while there is nothing to do); None once closed."""
        with self._cond:
            while not self._closed and not len(self.batch) and not self._ready:
                self._cond.wait()
            if self._closed:
                return None
            units: list[_Ready] = []
            rows = len(self.batch)
            while self._ready and rows + len(self._ready[0].rows) <= self.max_batch:
                unit = self._ready.popleft()
                units.append(unit)
                rows += len(unit.rows)
            return units

    def _loop(self) -> None:
        while True:
            if self.prefill_thread:
                units = self._joining()
            else:
                jobs = self._take(self.max_batch)
                units = None if jobs is None else []
                if jobs:
                    units = self._prefill_or_fail(jobs, self.lock)
            if units is None:
                break
            try:
                with self.lock:
                    t0 = time.perf_counter()
                    for unit in units:
                        self._join(unit)
                    t1 = time.perf_counter()
                    rows = len(self.batch)
                    events = self.batch.step()
                    self.join_seconds += t1 - t0
                    self.step_seconds += time.perf_counter() - t1
                if rows:
                    self.steps += 1
                    self.rows_stepped += rows
                    self.max_rows = max(self.max_rows, rows)
                self._dispatch(events)
                self._reap()
            except Exception as exc:  # a bug in decoding: fail this batch, keep serving the next
                log.exception("decoding step failed")
                self._fail_running(InternalError(f"decoding failed: {type(exc).__name__}"))
        self._shutdown()

    def _join(self, unit: _Ready) -> None:
        """Put a ready unit into the batch, less its jobs that ended or were cancelled meanwhile (a group's
        shared part joins whole, then those rows leave)."""
        self._still_wanted([job for job in unit.jobs if job in self._running])  # settles the cancelled, expired
        dead = [job for job in unit.jobs if job not in self._running or job.done]
        if len(dead) == len(unit.jobs):
            return
        self.batch.join(unit.rows, unit.parts)
        if dead:
            self.batch.drop(dead)

    def _fail(self, jobs: list[Job], error: BaseException) -> None:
        with self._cond:
            for job in jobs:
                self._running.discard(job)
            self._cond.notify_all()
        for job in jobs:
            job.finish(error=error)

    def _still_wanted(self, jobs: list[Job]) -> list[Job]:
        now = time.monotonic()
        gone = [job for job in jobs if job.cancelled or job.expired(now)]
        if gone:
            with self._cond:
                for job in gone:
                    self._running.discard(job)
                self._cond.notify_all()
            for job in gone:
                self._settle(job, "in the queue")
        return [job for job in jobs if job not in gone]

    def _dispatch(self, events: list[Any]) -> None:
        for ev in events:
            job: Job = ev.key
            if ev.token is not None:
                job.on_token(ev.token)
            if ev.done is None:
                continue
            if job.on_done(ev.done) and not job.cancelled:
                with self._cond:  # the strict retry: back in at the head of the queue
                    self._running.discard(job)
                    self._waiting.appendleft(job)
                    self._cond.notify_all()
                continue
            with self._cond:
                self._running.discard(job)
                self._cond.notify_all()
            if job.done:
                self.served += 1
                spent = time.monotonic() - job.created
                self._job_seconds = spent if not self._job_seconds else 0.8 * self._job_seconds + 0.2 * spent
            else:
                self._settle(job, "while decoding")

    def _settle(self, job: Job, where: str) -> None:
        """Finish a cancelled or expired job with its error, and count it."""
        if job.cancelled:
            self.cancelled += 1
            job.finish(error=CancelledError(f"cancelled by the client {where}"))
        else:
            self.timed_out += 1
            job.finish(error=RequestTimeoutError(f"timed out {where}"))

    def _reap(self) -> None:
        now = time.monotonic()
        gone = [job for job in list(self._running) if job.cancelled or job.expired(now)]
        if not gone:
            return
        with self.lock:
            self.batch.drop(gone)
        with self._cond:
            for job in gone:
                self._running.discard(job)
            self._cond.notify_all()
        for job in gone:
            self._settle(job, "while decoding")

    def _fail_running(self, error: BaseException) -> None:
        with self._cond:
            jobs, self._running = list(self._running), set()
            self._ready.clear()
            self._cond.notify_all()
        self.batch = self._new_batch()
        for job in jobs:
            job.finish(error=error)

    def _shutdown(self) -> None:
        with self._cond:
            waiting, self._waiting = list(self._waiting), collections.deque()
        for job in waiting:
            job.finish(error=ServerClosedError("the server is shutting down"))
        self._fail_running(ServerClosedError("the server is shutting down"))
