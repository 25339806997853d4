"""The training loop behind ``splinescope run``: data, model and probes from a config, the
Monitor attached, checkpoints at every probe step, exact resume, phenomena at the end.

Stopping: SIGINT, SIGTERM and SIGHUP ask the loop to stop at the end of the current step
(:mod:`splinescope.train.signals`): it writes a checkpoint there, marks the run
"interrupted" and raises :class:`~splinescope.train.signals.Interrupted`; a second signal
stops at once. Divergence (:mod:`splinescope.train.divergence`): a non-finite loss or
parameter marks the run "diverged" with the step and the tensor's name; training stops
there unless ``on_divergence = "continue"``.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.monitor import Monitor
from splinescope.monitor.probe import ProbeContext
from splinescope.store.checkpoints import (
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    save_snapshot,
    save_snapshot_spec,
    snapshot_path,
)
from splinescope.train.build import (
    BatchLoss,
    BatchSampler,
    data_spec,
    load_data,
    make_loss,
    make_model,
    make_optimizer,
    make_probes,
    make_schedule,
    model_spec,
)
from splinescope.train.config import TrainConfig
from splinescope.train.divergence import Divergence, ParameterCheck, check_loss
from splinescope.train.signals import StopRequests


def check_runs_dir(runs_dir: str | os.PathLike) -> Path:
    """Create ``runs_dir`` if needed and prove it is writable (a clear error naming it if
    not), before anything is trained."""
    from splinescope.store._db import ensure_writable_dir

    return ensure_writable_dir(runs_dir)


@dataclass(frozen=True)
class Progress:
    """What the loop reports to a progress callback.

    ``loss`` is the last mini-batch loss; ``latest`` the Monitor's latest scalars per probe;
    ``headline`` the ``(label, value)`` pairs of the probes' declared headline values.
    """

    step: int
    total: int
    loss: float
    latest: dict[str, dict[str, float]]
    measured: bool
    headline: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train`: run id, final step, summary (phenomena), wall time (s)."""

    run_id: str
    step: int
    summary: dict[str, Any]
    latest: dict[str, dict[str, float]]
    seconds: float
    probe_errors: int
    divergence: Divergence | None = None


def headline_values(monitor: Monitor) -> tuple[tuple[str, float], ...]:
    """The latest value of every declared headline key, labelled (probe name added when two
    probes share a label)."""
    rows = []
    for probe in monitor.probes:
        outputs = probe.outputs()
        for key, value in monitor.latest.get(probe.name, {}).items():
            declared = outputs.scalar(key)
            if declared is not None and declared.headline:
                rows.append((declared.label, probe.name, value))
    labels = [label for label, _, _ in rows]
    return tuple(
        (label if labels.count(label) == 1 else f"{label} ({name})", value)
        for label, name, value in rows
    )


def _summarise(runs_dir: Path, run_id: str, store: Any) -> dict[str, Any]:
    from splinescope.analysis.phenomena import detect_run

    summary = detect_run(runs_dir, run_id)
    store.set_summary(run_id, summary)
    return summary


def stopped_before_any_step(row: dict[str, Any]) -> bool:
    """Whether a stored run stopped before it trained a step (nothing logged past step 0)."""
    last = row.get("last_step")
    return last is None or str(last) == "<NA>" or int(last) <= 0


def resumable_run(runs_dir: Path, run: str) -> tuple[dict[str, Any], TrainConfig]:
    """The stored row and config of run ``run``; SplinescopeError unless it can be resumed
    (interrupted or crashed)."""
    from splinescope.store import get_run

    row = get_run(runs_dir, run)
    if row["status"] not in ("interrupted", "crashed"):
        raise SplinescopeError(
            f"--resume: run {row['run_id']} is {row['status']}; only interrupted or crashed "
            "runs can be resumed"
        )
    return row, TrainConfig.from_dict(row["config"])


def open_run(
    store: Any,
    runs_dir: Path,
    config: TrainConfig,
    device: torch.device,
    row: dict[str, Any] | None,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: Any,
) -> tuple[str, int, dict[str, Any] | None]:
    """Create the run (``row`` None) or reopen the stored one, loading its checkpoint into
    ``model``, ``optimizer`` and ``sampler``; returns ``(run_id, first step, monitor state)``."""
    if row is None:
        run_id = store.create_run(
            config.name, config.to_dict(), seed=config.seed, device=str(device)
        )
        return run_id, 0, None
    run_id, start, monitor_state = row["run_id"], 0, None
    saved = checkpoint_path(runs_dir, run_id)
    if saved.exists() or not stopped_before_any_step(row):
        step, sampler_state, monitor_state = load_checkpoint(
            saved, model=model, optimizer=optimizer
        )
        sampler.load_state_dict(sampler_state)
        start = step + 1
    # else: stopped before its first checkpoint (a signal during setup or step 0): nothing was
    # trained, so the run starts again from step 0, under its id
    store.set_status(run_id, "running")
    return run_id, start, monitor_state


def train(
    config: TrainConfig | None,
    *,
    runs_dir: str | os.PathLike = "runs",
    resume: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: int = 100,
    strict: bool = False,
    stop_after: int | None = None,
    on_start: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``config``'s model with the Monitor attached and store everything in ``runs_dir``.

    Args:
        config: the run's definition; ``None`` with ``resume`` (the stored config is used).
        runs_dir: the runs directory (created; must be writable).
        resume: a run id / prefix / name to continue from its last checkpoint.
        on_progress: called every ``progress_every`` steps and at every probe step.
        strict: re-raise probe errors.
        stop_after: stop after this step as if SIGINT had arrived during it (checkpoint,
            "interrupted", :class:`~splinescope.train.signals.Interrupted`).
        on_start: called with the run id once the run exists (before the first step).

    Returns:
        :class:`TrainResult` (``divergence`` set when the run diverged). A stop request
        (SIGINT, SIGTERM, SIGHUP) marks the run ``interrupted`` after a checkpoint at the
        current step and raises :class:`~splinescope.train.signals.Interrupted` (a
        ``KeyboardInterrupt``); any other exception marks it ``crashed``.
    """
    if config is None and resume is None:
        raise SplinescopeError("config: give a TrainConfig, or resume=RUN to continue a run")
    with StopRequests() as stops:
        return _train(
            config,
            runs_dir=runs_dir,
            resume=resume,
            on_progress=on_progress,
            progress_every=progress_every,
            strict=strict,
            stop_after=stop_after,
            on_start=on_start,
            stops=stops,
        )


def _train(
    config: TrainConfig | None,
    *,
    runs_dir: str | os.PathLike,
    resume: str | None,
    on_progress: Callable[[Progress], None] | None,
    progress_every: int,
    strict: bool,
    stop_after: int | None,
    on_start: Callable[[str], None] | None,
    stops: StopRequests,
) -> TrainResult:
    from splinescope.store import RunStore

    runs_dir = check_runs_dir(runs_dir)
    store = RunStore(runs_dir)
    try:
        row = None
        if resume is not None:
            row, config = resumable_run(runs_dir, resume)
            run_id = row["run_id"]
        torch.manual_seed(config.seed)
        data = load_data(config)
        device = torch.device(config.device)
        try:
            model = make_model(config, data).to(device)
        except (RuntimeError, MemoryError, OverflowError) as exc:  # e.g. not enough memory
            raise SplinescopeError(
                f"config fields 'model', 'width', 'depth', 'channels': the {config.model} for "
                f"input shape {data.input_shape} and {data.n_classes} classes cannot be built "
                f"on {device} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            ) from None
        optimizer = make_optimizer(config, model)
        loss_fn = make_loss(config.loss)
        sampler = BatchSampler(data.n_train, config.batch_size, seed=config.seed + 1)
        x_train, y_train = data.x_train.to(device), data.y_train.to(device)
        context = ProbeContext.from_data(
            data, loss_fn=loss_fn, n_random=config.n_random, seed=config.seed, device=device
        )
        probes = make_probes(config)
        run_id, start, monitor_state = open_run(
            store, runs_dir, config, device, row, model=model, optimizer=optimizer, sampler=sampler
        )
        if on_start is not None:
            on_start(run_id)  # at once, so a caller that tracks runs never loses this one
        monitor = Monitor(
            model,
            probes,
            store,
            make_schedule(config),
            context=context,
            run_id=run_id,
            strict=strict,
        )
        if monitor_state:
            monitor.load_state_dict(monitor_state)
        if config.checkpoint:
            save_snapshot_spec(runs_dir, run_id, model_spec(config, data), data_spec(config))
    except BaseException:
        store.close()
        raise

    checkpoint = checkpoint_path(runs_dir, run_id)

    def keep(step: int) -> None:
        save_checkpoint(
            checkpoint,
            step=step,
            model=model,
            optimizer=optimizer,
            sampler_state=sampler.state_dict(),
            monitor_state=monitor.state_dict(),
        )

    batch_loss = BatchLoss(config.loss, y_train)
    parameters = ParameterCheck(model)
    began = time.perf_counter()
    loss_value = float("nan")
    step = start - 1
    divergence: Divergence | None = None
    try:
        with monitor:
            stops.check()  # a signal during setup: nothing trained yet, nothing to keep
            model.train()
            for step in range(start, config.steps + 1):
                if step > 0:
                    index = sampler.next()
                    loss = batch_loss(model(x_train[index]), index)
                    loss_value = loss.item()
                    found = check_loss(step, loss_value)
                    if found is None or config.on_divergence == "continue":
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                        found = found or parameters.check(step)
                    if found is not None and divergence is None:
                        divergence = found
                        store.set_divergence(run_id, found.step, found.tensor, found.value)
                    if found is not None and config.on_divergence == "stop":
                        break
                measured = monitor.step(step) is not None
                if measured and config.checkpoint:
                    keep(step)
                    save_snapshot(snapshot_path(runs_dir, run_id, step), model)
                if on_progress is not None and (measured or step % progress_every == 0):
                    on_progress(
                        Progress(
                            step,
                            config.steps,
                            loss_value,
                            monitor.latest,
                            measured,
                            headline_values(monitor),
                        )
                    )
                if stop_after is not None and step >= stop_after and stops.signum is None:
                    stops.signum = signal.SIGINT
                if stops.signum is not None:
                    if config.checkpoint and not measured:
                        keep(step)
                    stops.check()
            try:
                summary = _summarise(runs_dir, run_id, store)
            except Exception as exc:
                store.log_error(
                    run_id,
                    step,
                    "phenomena",
                    f"{type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                )
                summary = {}
            if divergence is not None:
                monitor.close("diverged")
    finally:
        store.close()
    return TrainResult(
        run_id=run_id,
        step=step,
        summary=summary,
        latest=monitor.latest,
        seconds=time.perf_counter() - began,
        probe_errors=monitor.errors,
        divergence=divergence,
    )
