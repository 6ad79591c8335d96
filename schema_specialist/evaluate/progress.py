"""Eval progress: a bar on a terminal, a plain line every tenth of the way (or minute) otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

MODES = ("auto", "bar", "lines", "none")


class Progress:
    """Counts answers done out of a total that may grow (retries are known only after the first pass)."""

    def __init__(self, mode: str = "none", stream: IO[str] | None = None, every_s: float = 60.0) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r} not in {MODES}")
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.total = self.done = 0
        self.system = ""
        self.every_s = every_s
        self._bar: Any = None
        self._t0 = time.perf_counter()
        self._last_t = self._t0
        self._last_tenth = 0
        self._start_done = 0

    def add_total(self, n: int) -> None:
        self.total += n
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def stage(self, system: str, todo: int, resumed: int = 0) -> None:
        """A system starts: `todo` answers to decode, `resumed` found in the answer log."""
        self.system = system
        if self.mode == "lines" and (todo or resumed):
            extra = f" ({resumed} more resumed from the answer log)" if resumed else ""
            self._line(f"eval: {system}: {todo} to answer{extra}")
        if self.mode == "bar":
            if self._bar is None and self.total:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, desc=system, unit="answer", leave=False, file=self.stream,
                                 initial=self.done)
            elif self._bar is not None:
                self._bar.set_description(system)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and self.total:
            now = time.perf_counter()
            tenth = int(10 * self.done / self.total)
            if tenth > self._last_tenth or now - self._last_t >= self.every_s:
                self._last_tenth, self._last_t = tenth, now
                rate = (self.done - self._start_done) / max(now - self._t0, 1e-9)
                left = (self.total - self.done) / rate if rate > 0 else 0.0
                self._line(f"eval: {self.system}: {self.done}/{self.total} answers ({100 * self.done / self.total:.0f}%), "
                           f"{rate:.2f}/s, about {_duration(left)} left")

    def message(self, text: str) -> None:
        """One line of its own (above the bar on a terminal); nothing with mode `none`."""
        if self.mode == "none":
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self._line(text)

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
