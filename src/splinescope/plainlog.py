"""Progress as plain lines, for output that is not a terminal (``nohup``, batch jobs, CI).

One line per probe step (and every ``log_every`` steps when asked), no colour, no cursor
movement, flushed at once::

    step 120/3,000 (4.0%) | elapsed 0:00:12 | eta 0:04:48 | loss 0.0312 | train accuracy 0.98
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TextIO


def clock(seconds: float) -> str:
    """``H:MM:SS`` (hours unbounded); ``-`` for an unknown or infinite time."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress_line(progress: Any, elapsed: float, eta: float, status: str) -> str:
    """One log line: step of total (share), elapsed, ETA, then ``status`` (loss, headlines)."""
    total = progress.total or 0
    share = f" ({100.0 * progress.step / total:.1f}%)" if total else ""
    head = f"step {progress.step:,}/{total:,}{share}" if total else f"step {progress.step:,}"
    return f"{head} | elapsed {clock(elapsed)} | eta {clock(eta)} | {status}"


class PlainLog:
    """A ``train(on_progress=...)`` callback writing :func:`progress_line` to ``stream``.

    Args:
        stream: where lines go (flushed after each).
        status: ``status(progress) -> str`` (the CLI's loss and headline values).
        log_every: also a line every this many steps (0: probe steps only).
        now: the clock (seconds), replaceable in tests.

    The ETA extrapolates the mean time per step since the first call.
    """

    def __init__(
        self,
        stream: TextIO,
        status: Callable[[Any], str],
        *,
        log_every: int = 0,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.stream = stream
        self.status = status
        self.log_every = log_every
        self.now = now
        self.started: float | None = None
        self.first_step: int | None = None
        self.lines = 0

    def __call__(self, progress: Any) -> None:
        t = self.now()
        if self.started is None:
            self.started, self.first_step = t, progress.step
        periodic = self.log_every > 0 and progress.step % self.log_every == 0
        if not (progress.measured or periodic):
            return
        elapsed = t - self.started
        done = progress.step - (self.first_step or 0)
        total = progress.total or 0
        eta = elapsed / done * (total - progress.step) if done > 0 and total else math.nan
        self.stream.write(progress_line(progress, elapsed, eta, self.status(progress)) + "\n")
        self.stream.flush()
        self.lines += 1
