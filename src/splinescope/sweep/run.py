"""Run a sweep: register it in the store, claim its points one by one, run them on a pool or
on Ray, record every attempt, retry failures, resume what was interrupted.

Faults, as handled here:

- a run that raises is recorded (message and traceback, in the sweep's attempts and the
  run's errors) and tried again up to ``retries`` times, from its checkpoint when it has one;
- a worker that dies (SIGKILL, out of memory) counts as a failed attempt of its run; the
  runs stopped with it are marked interrupted and resumed without counting;
- killing the sweep itself and running it again resumes: finished points are skipped, a
  run that was interrupted (its workers stop when the sweep dies) resumes from its
  checkpoint, and a point whose run finished after the sweep died is taken as finished;
- two sweep processes on one store never run the same point at once: a point is claimed
  when it is submitted, and points held by another live sweep are waited for.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from splinescope.errors import SplinescopeError
from splinescope.store import _db
from splinescope.store.checkpoints import checkpoint_path
from splinescope.store.sweeps import (
    Claim,
    PointSpec,
    claim_point,
    load_sweep,
    record_attempt,
    refresh_claims,
    register_sweep,
    release_claims,
)
from splinescope.sweep._worker import Outcome, Task, pack, unpack
from splinescope.sweep.executors import LOST, PoolExecutor, RayExecutor
from splinescope.sweep.population import PopulationTask, plan_groups
from splinescope.sweep.spec import SweepSpec, expand

BACKENDS = ("pool", "ray")


@dataclass(frozen=True)
class SweepEvent:
    """What the sweep reports while it works: ``kind`` is one of "skipped" (finished
    before), "busy" (held by another sweep), "started", "resumed", "finished", "failed",
    "retry", "interrupted", "gave-up" (failed before; ``retry_failed`` runs it again)."""

    kind: str
    point: str
    run_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class SweepResult:
    """The sweep's points after this call (``load_sweep``'s frame) and the wall time (s)."""

    name: str
    points: pd.DataFrame
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        """Points per state ("finished", "pending", "failed")."""
        return {str(k): int(v) for k, v in self.points["state"].value_counts().items()}


def default_jobs_threads(
    jobs: int | None, threads: int | None, cpus: int | None = None
) -> tuple[int, int]:
    """``(jobs, threads per run)`` that do not oversubscribe ``cpus`` cores (default: this
    machine's): given one, the other is ``cpus // it`` (at least 1)."""
    cpus = cpus or os.cpu_count() or 1
    if jobs is None:
        jobs = max(1, cpus // (threads or 1))
    if threads is None:
        threads = max(1, cpus // jobs)
    return jobs, threads


def make_executor(
    backend: str,
    spec: SweepSpec,
    *,
    jobs: int | None = None,
    address: str | None = None,
) -> PoolExecutor | RayExecutor:
    """The executor of ``backend`` ("pool" or "ray") for ``spec`` (see executors)."""
    if backend == "pool":
        if address is not None:
            raise SplinescopeError("--address is for --backend ray (a Ray cluster's address)")
        return PoolExecutor(*default_jobs_threads(jobs, spec.threads))
    if backend == "ray":
        return RayExecutor(
            num_cpus=spec.num_cpus, num_gpus=spec.num_gpus, address=address, jobs=jobs
        )
    raise SplinescopeError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def _bundle_of(runs_dir: Path, run_id: str) -> bytes:
    """The run ``run_id`` alone, as a runs directory packed for a Ray task."""
    from splinescope.store.merge import merge_stores

    with tempfile.TemporaryDirectory(prefix="splinescope-ship-") as tmp:
        merge_stores(runs_dir, tmp, runs=[run_id], sweeps=False)
        return pack(Path(tmp))


def _task(spec: SweepSpec, claim: Claim, runs_dir: Path, executor: Any) -> tuple[Task, bool]:
    """The task for a claimed point and whether it resumes a run."""
    resume = None
    if claim.run_id is not None and claim.run_status in ("interrupted", "crashed"):
        # Resume from its checkpoint; a run stopped before its first step (a worker taken
        # down during set-up) resumes from step 0 under its id, so no point gets two runs.
        from splinescope.store import get_run
        from splinescope.train.loop import stopped_before_any_step

        if checkpoint_path(runs_dir, claim.run_id).is_file() or stopped_before_any_step(
            get_run(runs_dir, claim.run_id)
        ):
            resume = claim.run_id
    remote = isinstance(executor, RayExecutor)
    task = Task(
        sweep=spec.name,
        point=claim.point,
        config=dict(claim.config),
        resume=resume,
        runs_dir=None if remote else str(runs_dir),
        threads=executor.threads,
        bundle=_bundle_of(runs_dir, resume) if remote and resume else None,
    )
    return task, resume is not None


def _settle(runs_dir: Path, spec: SweepSpec, point: str, outcome: Outcome) -> Outcome:
    """Bring a Ray run home (merge its bundle) and say what a lost pool worker's run is."""
    from splinescope.store.merge import merge_stores

    if outcome.bundle is not None:
        with tempfile.TemporaryDirectory(prefix="splinescope-home-") as tmp:
            try:
                unpack(outcome.bundle, Path(tmp))
                merge_stores(tmp, runs_dir, sweeps=False)
            except Exception as exc:  # noqa: BLE001 - the point fails, with the reason
                return Outcome(
                    "failed",
                    outcome.run_id,
                    f"shipping the run back failed: {exc}",
                    traceback.format_exc(),
                )
    if outcome.outcome != LOST:
        return outcome
    deadline = time.monotonic() + 60.0
    while True:  # the workers stopped with the pool may still be saving their runs
        record = load_sweep(runs_dir, spec.name).points.set_index("point").loc[point]
        run_id, status = record["run_id"], record["run_status"]
        if status != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if status == "interrupted" or run_id is None:
        # Stopped with its pool (another worker died), saved; or stopped before its run
        # existed (nothing to lose, nothing to count).
        return Outcome("interrupted", run_id, "stopped with its pool (a worker died)")
    if status == "finished":
        return Outcome("finished", run_id)
    return Outcome(
        "failed",
        run_id,
        "the worker process died (killed by a signal, or out of memory) "
        f"while running {'run ' + str(run_id) if run_id else 'the point'}",
        outcome.message,
    )


def _log_run_error(runs_dir: Path, outcome: Outcome) -> None:
    """Add a failed attempt to its run's errors (``splinescope show`` lists them)."""
    from splinescope.store import RunStore

    if outcome.run_id is None:
        return
    try:
        with RunStore(runs_dir) as store:
            store.log_error(outcome.run_id, None, "sweep", outcome.message, outcome.traceback)
    except SplinescopeError:
        pass  # the run never reached the store (e.g. lost with its Ray worker)


def _finished(
    executor: Any, inflight: dict[Any, list[tuple[str, float]]], poll_s: float
) -> list[tuple[Any, Outcome, str, float]]:
    """``(handle, outcome, point, started_at)`` per point of the tasks that ended (a
    population's task gives one outcome per point; a lost worker loses each of its points)."""
    out = []
    for handle, result in executor.wait(inflight, timeout=poll_s):
        entries = inflight.pop(handle)
        results = result if isinstance(result, list) else [result] * len(entries)
        for (name, started_at), outcome in zip(entries, results, strict=True):
            out.append((handle, outcome, name, started_at))
    return out


def run_sweep(
    spec: SweepSpec,
    runs_dir: str | os.PathLike = "runs",
    *,
    backend: str = "pool",
    jobs: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    poll_s: float = 1.0,
    on_event: Callable[[SweepEvent], None] | None = None,
    executor: PoolExecutor | RayExecutor | None = None,
    population: bool | None = None,
) -> SweepResult:
    """Run every point of ``spec`` not yet finished into the store at ``runs_dir``.

    Args:
        spec: the parsed sweep (:func:`~splinescope.sweep.load_spec`).
        runs_dir: the sweep's runs directory (its store holds the sweep's record).
        backend: "pool" (local processes) or "ray".
        jobs: pool processes (default: cores / threads); on a local Ray, how many runs
            at once (Ray's CPUs = jobs x the spec's ``num_cpus``).
        address: a Ray cluster's address (``--backend ray``).
        retry_failed: give points that used up their attempts a new set.
        on_event: called with a :class:`SweepEvent` at every change.
        executor: an executor to use instead of making one (kept open).
        population: train points that differ only in seed, init_scale, weight_decay and lr
            together as populations (:mod:`splinescope.sweep.population`; pool only);
            None: the spec's ``population`` (default on).

    Returns:
        :class:`SweepResult`. ``KeyboardInterrupt`` propagates after the in-flight runs are
        stopped (marked interrupted) and the claims released: run the sweep again to resume.
    """
    began = time.perf_counter()
    emit = on_event or (lambda event: None)
    points = expand(spec)
    runs_dir = _db.ensure_writable_dir(runs_dir)
    register_sweep(
        runs_dir,
        spec.name,
        spec.to_dict(),
        spec.axis_names,
        [PointSpec(p.name, p.index, p.coords, p.config.to_dict()) for p in points],
    )
    own = executor is None
    executor = executor or make_executor(backend, spec, jobs=jobs, address=address)
    max_attempts = 1 + spec.retries
    todo = [p.name for p in points]
    busy: list[str] = []
    inflight: dict[Any, list[tuple[str, float]]] = {}
    together = spec.population if population is None else population
    groups = plan_groups(points, executor.slots) if together and executor.name == "pool" else {}
    last_refresh = time.monotonic()
    try:
        while todo or inflight or busy:
            while todo and len(inflight) < executor.slots:
                name = todo.pop(0)
                mates = [n for n in groups.get(name, ()) if n != name and n in todo]
                todo = [n for n in todo if n not in mates]
                tasks = []
                for member in (name, *mates):
                    claim = claim_point(runs_dir, spec.name, member, retry_failed=retry_failed)
                    if claim == "busy":
                        busy.append(member)
                        emit(SweepEvent("busy", member))
                        continue
                    if isinstance(claim, str):
                        emit(SweepEvent("skipped" if claim == "finished" else "gave-up", member))
                        continue
                    tasks.append(_task(spec, claim, runs_dir, executor))
                if not tasks:
                    continue
                job = tasks[0][0] if len(tasks) == 1 else PopulationTask(tuple(t for t, _ in tasks))
                inflight[executor.submit(job)] = [(t.point, time.time()) for t, _ in tasks]
                for task, resumed in tasks:
                    kind = "resumed" if resumed else "started"
                    emit(SweepEvent(kind, task.point, task.resume))
            if inflight:
                for _, outcome, name, started_at in _finished(executor, inflight, poll_s):
                    outcome = _settle(runs_dir, spec, name, outcome)
                    if outcome.outcome == "failed":
                        _log_run_error(runs_dir, outcome)
                    state = record_attempt(
                        runs_dir,
                        spec.name,
                        name,
                        run_id=outcome.run_id,
                        outcome=outcome.outcome,
                        started_at=started_at,
                        max_attempts=max_attempts,
                        message=outcome.message,
                        traceback=outcome.traceback,
                    )
                    kind = (
                        outcome.outcome
                        if state != "pending" or outcome.outcome != "failed"
                        else "retry"
                    )
                    emit(SweepEvent(kind, name, outcome.run_id, outcome.message))
                    if state == "pending":
                        todo.append(name)
            elif busy:
                time.sleep(poll_s)
                todo, busy = busy, []
            if time.monotonic() - last_refresh > 30.0:
                refresh_claims(runs_dir, spec.name)
                last_refresh = time.monotonic()
    except BaseException:
        if own:
            executor.close(cancel=True)
        raise
    finally:
        release_claims(runs_dir, spec.name)
        if own:
            executor.close()
    record = load_sweep(runs_dir, spec.name)
    return SweepResult(spec.name, record.points, time.perf_counter() - began)
