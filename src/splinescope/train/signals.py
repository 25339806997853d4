"""Stop requests from the outside: SIGINT (Ctrl-C), SIGTERM (``timeout``, SLURM, Kubernetes)
and SIGHUP (a closed terminal) all ask the training loop to stop at the end of its step.

The first signal only sets :attr:`StopRequests.signum`; the loop finishes the step it is in,
writes a checkpoint and raises :class:`Interrupted`. A second signal raises
:class:`Interrupted` at once, from wherever the loop is (the step is abandoned; the last
checkpoint stands). The conventional exit code of a process stopped by signal ``N`` is
``128 + N``: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

#: The signals handled, where the platform has them.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """Training stopped on request (a signal, or ``stop_after`` in tests).

    A ``KeyboardInterrupt`` subclass, so code that handles Ctrl-C handles it too.
    ``signum`` is the signal's number, ``exit_code`` the conventional ``128 + signum``.
    """

    def __init__(self, signum: int, *, immediate: bool = False) -> None:
        self.signum = int(signum)
        self.immediate = immediate
        self.exit_code = 128 + self.signum
        super().__init__(f"stopped by {signal_name(self.signum)}")


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, and so on (``"signal N"`` for numbers without a name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopRequests:
    """Install handlers for :data:`STOP_SIGNALS` for the duration of a ``with`` block.

    Handlers are installed only in the main thread (Python allows no other); elsewhere the
    block is a no-op and signals keep their previous behaviour. The previous handlers are
    restored on exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise Interrupted(signum, immediate=True)
        self.signum = signum

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop was requested."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
