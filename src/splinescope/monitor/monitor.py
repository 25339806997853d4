"""The Monitor: runs probes at scheduled steps of a user's training loop and stores results.

::

    probes = [AccuracyProbe(), LocalComplexityProbe(radius=0.05),
              (HessianProbe(), LogSchedule(10, max_step=steps))]   # a schedule of its own
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

from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.probe import Probe, ProbeContext, ProbeResult
from splinescope.monitor.registry import probe_spec
from splinescope.monitor.schedules import Schedule
from splinescope.nn.guard import ModelState


def _check_schedule(schedule: Any, where: str) -> None:
    if not isinstance(schedule, Schedule):
        raise SplinescopeError(
            f"{where}: expected a LogSchedule, EverySchedule or ExplicitSchedule, got "
            f"{type(schedule).__name__}"
        )


def _open_store(store: Any) -> tuple[Any, bool]:
    if isinstance(store, (str, os.PathLike)):
        from splinescope.store import RunStore

        return RunStore(Path(store)), True
    for method in (
        "create_run",
        "log_scalars",
        "log_array",
        "log_error",
        "set_status",
        "set_probes",
    ):
        if not callable(getattr(store, method, None)):
            raise SplinescopeError(
                f"store: expected a splinescope.store.RunStore or a runs directory path, "
                f"got {type(store).__name__} (no {method}())"
            )
    return store, False


def _check_sinks(sinks: Any) -> list[Any]:
    if isinstance(sinks, (str, bytes)) or not hasattr(sinks, "__iter__"):
        raise SplinescopeError(f"sinks: expected a list of sinks, got {sinks!r}")
    out = list(sinks)
    for i, sink in enumerate(out):
        for method in ("open", "log_scalars", "close"):
            if not callable(getattr(sink, method, None)):
                raise SplinescopeError(
                    f"sinks[{i}]: {type(sink).__name__} has no {method}() (a sink needs "
                    "open(run_id, name, config), log_scalars(step, probe, scalars), close(status))"
                )
    return out


ProbeEntry = Probe | tuple[Probe, Schedule]


class Monitor:
    """Run ``probes`` on ``model`` at their scheduled steps and write results to ``store``.

    Args:
        model: the network being trained (never modified by measuring).
        probes: objects following the :class:`~splinescope.monitor.probe.Probe` protocol, or
            ``(probe, schedule)`` pairs for a probe with a schedule of its own; names must be
            unique (the store's probe names).
        store: a :class:`splinescope.store.RunStore` or a runs directory path (opened and
            closed by the Monitor).
        schedule: when to measure the probes that have no schedule of their own.
        context: the point sets and loss the probes need (each probe is given only what
            its ``needs`` name).
        run_id: continue this existing run; default: create a new run.
        name, config, seed: stored with a new run.
        strict: re-raise a probe's exception instead of recording it and going on.
        sinks: where scalars are also streamed as they are stored (TensorBoard, MLflow, a
            trainer's loggers: :mod:`splinescope.export.sinks`); a failing sink is recorded
            as an error of probe ``sink:<name>`` and the run goes on (unless ``strict``).

    Each probe's kind, config, schedule and declared outputs are recorded in the store, so
    the report and analysis read labels and headline values from there.

    Attributes:
        run_id: the store's id of the run.
        latest: ``{probe name: {key: value}}`` — the last scalars each probe produced.
        errors: number of probe failures recorded.
    """

    def __init__(
        self,
        model: nn.Module,
        probes: Sequence[ProbeEntry],
        store: Any,
        schedule: Schedule,
        *,
        context: ProbeContext | None = None,
        run_id: str | None = None,
        name: str = "run",
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        strict: bool = False,
        sinks: Sequence[Any] = (),
    ) -> None:
        if not isinstance(model, nn.Module):
            raise SplinescopeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        _check_schedule(schedule, "schedule")
        self.model = model
        self.probes: list[Probe] = []
        self.schedules: dict[str, Schedule] = {}
        self.context = context if context is not None else ProbeContext()
        for entry in probes:
            probe, own = entry if isinstance(entry, tuple) else (entry, schedule)
            probe_name = getattr(probe, "name", None)
            if not isinstance(probe_name, str) or not callable(getattr(probe, "compute", None)):
                raise SplinescopeError(
                    f"probes: {probe!r} is not a probe (needs a string 'name' and compute())"
                )
            _check_schedule(own, f"probes: schedule of probe {probe_name!r}")
            missing = self.context.missing(tuple(getattr(probe, "needs", ())))
            if missing:
                raise SplinescopeError(
                    f"probes: probe {probe_name!r} needs {', '.join(missing)}, which the "
                    "context does not provide (pass context=ProbeContext(...))"
                )
            if probe_name in self.schedules:
                raise SplinescopeError(
                    f"probes: probe names must be unique, repeated: {probe_name!r}"
                )
            self.probes.append(probe)
            self.schedules[probe_name] = own
        self.schedule = schedule
        self.strict = strict
        self.store, self._owns_store = _open_store(store)
        if run_id is None:
            run_id = self.store.create_run(name, dict(config or {}), seed=seed)
        self.run_id: str = run_id
        self.store.set_probes(
            run_id, {p.name: probe_spec(p, repr(self.schedules[p.name])) for p in self.probes}
        )
        self.sinks = _check_sinks(sinks)
        for sink in self.sinks:
            self._to_sink(sink, -1, "open", run_id, name, dict(config or {}))
        self.latest: dict[str, dict[str, float]] = {}
        self.errors = 0
        self.probe_errors: dict[str, int] = {}
        self.last_step: int | None = None
        self.closed = False
        heartbeat = getattr(self.store, "heartbeat", None)
        self._heartbeat = heartbeat if callable(heartbeat) else None

    def due(self, step: int) -> list[Probe]:
        """The probes whose schedule holds ``step``."""
        return [p for p in self.probes if step in self.schedules[p.name]]

    def measure(self, step: int, probes: Sequence[Probe] | None = None) -> dict[str, ProbeResult]:
        """Run ``probes`` (default: every probe, whatever the schedules say) now and store
        the results."""
        if self.closed:
            raise SplinescopeError(f"Monitor: run {self.run_id} is closed; cannot measure")
        context = replace(self.context, step=step)
        results: dict[str, ProbeResult] = {}
        for probe in self.probes if probes is None else probes:
            guard = ModelState.capture(self.model)
            try:
                result = probe.compute(self.model, context.restricted(tuple(probe.needs)))
                if not isinstance(result, ProbeResult):
                    raise SplinescopeError(
                        f"probe {probe.name!r}: compute returned {type(result).__name__}, "
                        "expected a ProbeResult"
                    )
            except Exception as exc:
                guard.restore()
                self.errors += 1
                self.probe_errors[probe.name] = self.probe_errors.get(probe.name, 0) + 1
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
            if scalars:
                for sink in self.sinks:
                    self._to_sink(sink, step, "log_scalars", step, probe.name, scalars)
        self.last_step = step
        return results

    def step(self, step: int) -> dict[str, ProbeResult] | None:
        """Call once per training step: runs the probes due at ``step``.

        Returns the results of the probes that ran, or ``None`` when none was due.
        """
        if self._heartbeat is not None:
            self._heartbeat(self.run_id)
        due = self.due(step)
        if due:
            return self.measure(step, due)
        return None

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue as if never stopped: error counts, the
        last measured step, the latest scalars, each schedule (checked on load) and the
        state of every probe that has a ``state_dict()``."""
        return {
            "errors": self.errors,
            "probe_errors": dict(self.probe_errors),
            "last_step": self.last_step,
            "latest": {k: dict(v) for k, v in self.latest.items()},
            "schedules": {name: repr(s) for name, s in self.schedules.items()},
            "probes": {
                p.name: p.state_dict()
                for p in self.probes
                if callable(getattr(p, "state_dict", None))
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; the probes and schedules must be the same as saved."""
        saved = dict(state.get("schedules", {}))
        mine = {name: repr(s) for name, s in self.schedules.items()}
        if saved != mine:
            raise SplinescopeError(
                f"Monitor.load_state_dict: the saved probes and schedules {saved} differ from "
                f"this monitor's {mine}"
            )
        self.errors = int(state["errors"])
        self.probe_errors = dict(state.get("probe_errors", {}))
        self.last_step = state.get("last_step")
        self.latest = {k: dict(v) for k, v in state.get("latest", {}).items()}
        for probe in self.probes:
            if probe.name in state.get("probes", {}):
                probe.load_state_dict(state["probes"][probe.name])

    def _to_sink(self, sink: Any, step: int, method: str, *args: Any) -> None:
        """Call ``sink.method(*args)``; a failure is recorded (probe ``sink:<name>``)."""
        try:
            getattr(sink, method)(*args)
        except Exception as exc:
            self.errors += 1
            where = f"sink:{getattr(sink, 'name', type(sink).__name__)}"
            self.store.log_error(
                self.run_id, step, where, f"{type(exc).__name__}: {exc}", traceback.format_exc()
            )
            if self.strict:
                raise

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
            for sink in self.sinks:
                self._to_sink(sink, self.last_step or 0, "close", status)
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
