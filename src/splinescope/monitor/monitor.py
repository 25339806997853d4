"""The Monitor: runs probes at scheduled steps of a user's training loop and stores results.

::

    probes = [AccuracyProbe(), LocalComplexityProbe(radius=0.05), WeightNormProbe()]
    context = ProbeContext.from_data(data, loss_fn=loss_fn)
    with Monitor(model, probes, "runs", LogSchedule(60, max_step=steps), context=context) as monitor:
        for step in range(steps + 1):
            if step > 0:
                ...  # one optimizer update
            monitor.step(step)

Leaving the ``with`` block closes the run as ``finished``, ``interrupted`` (Ctrl-C) or
``crashed`` (any other exception, which propagates).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.probe import Probe, ProbeContext, ProbeResult
from splinescope.monitor.schedules import Schedule
from splinescope.nn.guard import restore_rng, snapshot_rng


class _ModelGuard:
    """Snapshot of what a probe must not change: global RNG, modes, ``.grad``, buffers.

    A belt-and-braces guard around every probe (the measure functions promise the same):
    :meth:`restore` puts everything back, so a misbehaving probe cannot alter the run.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.rng = snapshot_rng()
        self.grad_enabled = torch.is_grad_enabled()
        self.modes = [(m, m.training) for m in model.modules()]
        self.grads = [
            (p, p.grad, None if p.grad is None else p.grad.detach().clone())
            for p in model.parameters()
        ]
        self.buffers = [(b, b.detach().clone()) for b in model.buffers()]

    def restore(self) -> None:
        restore_rng(self.rng)
        torch.set_grad_enabled(self.grad_enabled)
        for module, mode in self.modes:
            module.training = mode
        with torch.no_grad():
            for param, grad, value in self.grads:
                if grad is not None:
                    grad.copy_(value)
                param.grad = grad
            for buffer, value in self.buffers:
                buffer.copy_(value)


def _open_store(store: Any) -> tuple[Any, bool]:
    if isinstance(store, (str, os.PathLike)):
        from splinescope.store import RunStore

        return RunStore(Path(store)), True
    for method in ("create_run", "log_scalars", "log_array", "log_error", "set_status"):
        if not callable(getattr(store, method, None)):
            raise SplinescopeError(
                f"store: expected a splinescope.store.RunStore or a runs directory path, "
                f"got {type(store).__name__} (no {method}())"
            )
    return store, False


class Monitor:
    """Run ``probes`` on ``model`` at the steps of ``schedule`` and write results to ``store``.

    Args:
        model: the network being trained (never modified by measuring).
        probes: objects following the :class:`~splinescope.monitor.probe.Probe` protocol;
            names must be unique.
        store: a :class:`splinescope.store.RunStore` or a runs directory path (opened and
            closed by the Monitor).
        schedule: when to measure (``step in schedule``).
        context: the point sets and loss the probes need.
        run_id: continue this existing run; default: create a new run.
        name, config, seed: stored with a new run.
        strict: re-raise a probe's exception instead of recording it and going on.

    Attributes:
        run_id: the store's id of the run.
        latest: ``{probe name: {key: value}}`` — the last scalars each probe produced.
        errors: number of probe failures recorded.
    """

    def __init__(
        self,
        model: nn.Module,
        probes: Sequence[Probe],
        store: Any,
        schedule: Schedule,
        *,
        context: ProbeContext | None = None,
        run_id: str | None = None,
        name: str = "run",
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        strict: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise SplinescopeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(schedule, Schedule):
            raise SplinescopeError(
                f"schedule: expected a LogSchedule, EverySchedule or ExplicitSchedule, got "
                f"{type(schedule).__name__}"
            )
        self.model = model
        self.probes = list(probes)
        self.context = context if context is not None else ProbeContext()
        names = [getattr(p, "name", None) for p in self.probes]
        for probe, probe_name in zip(self.probes, names, strict=True):
            if not isinstance(probe_name, str) or not callable(getattr(probe, "compute", None)):
                raise SplinescopeError(
                    f"probes: {probe!r} is not a probe (needs a string 'name' and compute())"
                )
            missing = self.context.missing(tuple(getattr(probe, "needs", ())))
            if missing:
                raise SplinescopeError(
                    f"probes: probe {probe_name!r} needs {', '.join(missing)}, which the "
                    "context does not provide (pass context=ProbeContext(...))"
                )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SplinescopeError(f"probes: probe names must be unique, repeated: {duplicates}")
        self.schedule = schedule
        self.strict = strict
        self.store, self._owns_store = _open_store(store)
        if run_id is None:
            run_id = self.store.create_run(name, dict(config or {}), seed=seed)
        self.run_id: str = run_id
        self.latest: dict[str, dict[str, float]] = {}
        self.errors = 0
        self.last_step: int | None = None
        self.closed = False
        heartbeat = getattr(self.store, "heartbeat", None)
        self._heartbeat = heartbeat if callable(heartbeat) else None

    def measure(self, step: int) -> dict[str, ProbeResult]:
        """Run every probe now (whatever the schedule says) and store the results."""
        if self.closed:
            raise SplinescopeError(f"Monitor: run {self.run_id} is closed; cannot measure")
        context = replace(self.context, step=step)
        results: dict[str, ProbeResult] = {}
        for probe in self.probes:
            guard = _ModelGuard(self.model)
            try:
                result = probe.compute(self.model, context)
                if not isinstance(result, ProbeResult):
                    raise SplinescopeError(
                        f"probe {probe.name!r}: compute returned {type(result).__name__}, "
                        "expected a ProbeResult"
                    )
            except Exception as exc:
                guard.restore()
                self.errors += 1
                self.store.log_error(
                    self.run_id,
                    step,
                    probe.name,
                    f"{type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                )
                if self.strict:
                    raise
                continue
            guard.restore()
            results[probe.name] = result
            scalars = {k: float(v) for k, v in result.scalars.items()}
            with self._batch():
                if scalars:
                    self.store.log_scalars(self.run_id, step, probe.name, scalars)
                for key, array in result.arrays.items():
                    self.store.log_array(self.run_id, step, probe.name, key, array)
            self.latest[probe.name] = scalars
        self.last_step = step
        return results

    def step(self, step: int) -> dict[str, ProbeResult] | None:
        """Call once per training step: measures when ``step in schedule``.

        Returns the probes' results at a scheduled step, else ``None``.
        """
        if self._heartbeat is not None:
            self._heartbeat(self.run_id)
        if step in self.schedule:
            return self.measure(step)
        return None

    def _batch(self) -> AbstractContextManager:
        """One store transaction per probe and step, where the store supports it."""
        batch = getattr(self.store, "batch", None)
        return batch() if callable(batch) else nullcontext()

    def close(self, status: str = "finished") -> None:
        """Mark the run ``finished`` / ``crashed`` / ``interrupted`` (once) and release the store."""
        if self.closed:
            return
        self.closed = True
        try:
            self.store.set_status(self.run_id, status)
        finally:
            if self._owns_store:
                self.store.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = "finished"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "crashed"
        self.close(status)
        return False
