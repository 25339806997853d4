"""One Monitor over a trainer's run: step probes on their schedules, held-out probes at the
trainer's evaluations, deduplicated steps, and a state that survives the trainer's checkpoints."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.monitor import Monitor
from splinescope.monitor.probe import ProbeContext
from splinescope.monitor.schedules import Schedule


class AtEvaluation(Schedule):
    """The schedule of a held-out probe: it runs when the trainer evaluates (validation end,
    ``on_evaluate``), never on a step schedule."""

    def __contains__(self, step: int) -> bool:
        return False

    def __repr__(self) -> str:
        return "AtEvaluation()"


def split_heldout(entries: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Entries without a schedule of their own that need ``test`` points are held out (they
    run at evaluations); the rest run on schedules."""
    step, heldout = [], []
    for entry in entries:
        probe = entry[0] if isinstance(entry, tuple) else entry
        if "test" not in tuple(getattr(probe, "needs", ())):
            step.append(entry)
        elif isinstance(entry, tuple):
            raise SplinescopeError(
                f"probes: probe {getattr(probe, 'name', probe)!r} needs test points, which "
                "arrive only at the trainer's evaluations; give it no schedule of its own "
                "(it then runs at every evaluation)"
            )
        else:
            heldout.append(entry)
    return step, heldout


class Attachment:
    """A Monitor for a trainer callback.

    Args:
        model: the module the probes call (logits ``[B, C]`` from inputs ``[B, ...]``).
        entries: Monitor entries (probes and ``(probe, schedule)`` pairs).
        context: the fixed training points; test points arrive with :meth:`evaluate`.
        runs_dir, schedule, name, config, sinks, strict: as for :class:`Monitor`.
        resume: a :meth:`state_dict` from a trainer checkpoint: the same run continues.
    """

    def __init__(
        self,
        model: nn.Module,
        entries: Sequence[Any],
        context: ProbeContext,
        runs_dir: str | Path,
        schedule: Schedule,
        *,
        name: str,
        config: Mapping[str, Any],
        sinks: Sequence[Any] = (),
        strict: bool = False,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        step_entries, heldout = split_heldout(entries)
        self.heldout = list(heldout)
        self._test_ready = False
        ctx = context
        if heldout:
            # A placeholder satisfies the Monitor's check; held-out probes only ever run
            # after evaluate() has put the real test points in place.
            ctx = replace(context, x_test=context.x_train[:1], y_test=context.y_train[:1])
        run_id = None if resume is None else str(resume["run_id"])
        self.monitor = Monitor(
            model,
            [*step_entries, *((p, AtEvaluation()) for p in heldout)],
            runs_dir,
            schedule,
            context=ctx,
            run_id=run_id,
            name=name,
            config=config,
            sinks=sinks,
            strict=strict,
        )
        self.seen_step: int | None = None
        self.evaluated_step: int | None = None
        self.seconds = 0.0  # wall time spent measuring and storing (this process)
        if resume is not None:
            self.monitor.store.set_status(run_id, "running")
            self.monitor.load_state_dict(resume["monitor"])
            self.seen_step = resume.get("seen_step")
            self.evaluated_step = resume.get("evaluated_step")

    @property
    def run_id(self) -> str:
        return self.monitor.run_id

    def step(self, step: int) -> None:
        """Run the step probes due at ``step``, once per step (repeated calls, as under
        gradient accumulation, do nothing)."""
        if step == self.seen_step:
            return
        self.seen_step = step
        began = time.perf_counter()
        self.monitor.step(step)
        self.seconds += time.perf_counter() - began

    def evaluate(self, step: int, x_test: torch.Tensor, y_test: torch.Tensor) -> None:
        """Run the held-out probes at ``step`` on these test points (fixed on first use)."""
        if not self.heldout or step == self.evaluated_step:
            return
        began = time.perf_counter()
        if not self._test_ready:
            device = self.monitor.context.x_train.device
            self.monitor.context = replace(
                self.monitor.context, x_test=x_test.to(device), y_test=y_test.to(device)
            )
            self._test_ready = True
        self.evaluated_step = step
        self.monitor.measure(step, self.heldout)
        self.seconds += time.perf_counter() - began

    def state_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "monitor": self.monitor.state_dict(),
            "seen_step": self.seen_step,
            "evaluated_step": self.evaluated_step,
        }

    def close(self, status: str) -> None:
        self.monitor.close(status)


def check_resume_state(state: Any, where: str) -> dict[str, Any]:
    """A saved :meth:`Attachment.state_dict` (``None`` or ``{}``: nothing to resume)."""
    if not state:
        return {}
    if not isinstance(state, Mapping) or "run_id" not in state or "monitor" not in state:
        raise SplinescopeError(f"{where}: not a splinescope callback state: {state!r:.200}")
    return dict(state)
