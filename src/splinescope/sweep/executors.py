"""Where a sweep's runs execute: a local process pool (default) or Ray tasks.

Both take :class:`~splinescope.sweep._worker.Task` objects and give back
:class:`~splinescope.sweep._worker.Outcome` objects; neither schedules anything itself.
``slots`` is how many tasks the sweep keeps in flight (it claims a point only when it
submits it, so that two sweeps on one store share the work).

- :class:`PoolExecutor`: ``jobs`` processes from the *spawn* context, a fresh process per
  run (``max_tasks_per_child=1``), ``threads`` torch/OpenMP threads each. Runs write the
  sweep's store directly (same host). A worker that dies (SIGKILL, out of memory) breaks the
  pool: its run comes back as "lost", the others are stopped cleanly (SIGTERM: marked
  interrupted, checkpoint kept) and the pool is rebuilt for the next submit.
- :class:`RayExecutor`: one Ray task per run with ``num_cpus``/``num_gpus``; ``ray.init()``
  on this machine (``num_cpus`` = jobs x per-run CPUs) or ``address=`` an existing cluster.
  Each task trains into a local temporary store and ships the finished runs directory back
  as a tar, which the sweep merges into its store (its only writer). Ray retries nothing
  (``max_retries=0``): the sweep's own retry policy applies.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Collection
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from splinescope.errors import SplinescopeError
from splinescope.sweep._worker import Outcome, Task, init_pool_worker, run_task, set_threads
from splinescope.sweep.population import PopulationTask, run_population_task

LOST = "lost"  # the worker process died; the store says what became of the run


class PoolExecutor:
    """``jobs`` spawned processes, ``threads`` threads each; a fresh process per run unless
    ``runs_per_process`` says otherwise (None: processes live as long as the pool; saves the
    start-up, ~2-5 s of imports per run here, at the cost of isolation)."""

    name = "pool"

    def __init__(self, jobs: int, threads: int, runs_per_process: int | None = 1) -> None:
        if jobs < 1 or threads < 1:
            raise SplinescopeError(f"--jobs and threads must be ≥ 1, got {jobs} and {threads}")
        if runs_per_process is not None and runs_per_process < 1:
            raise SplinescopeError(f"runs_per_process must be ≥ 1 or None, got {runs_per_process}")
        self.jobs, self.threads = int(jobs), int(threads)
        self.runs_per_process = runs_per_process
        self.slots = self.jobs
        self._pool: cf.ProcessPoolExecutor | None = None

    def _ensure(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_pool_worker,
                initargs=(self.threads,),
                max_tasks_per_child=self.runs_per_process,
            )
        return self._pool

    def submit(self, task: Task | PopulationTask) -> cf.Future:
        if isinstance(task, PopulationTask):
            return self._ensure().submit(run_population_task, task)
        return self._ensure().submit(run_task, task)

    def wait(self, handles: Collection[Any], timeout: float) -> list[tuple[Any, Outcome]]:
        done, _ = cf.wait(list(handles), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        for future in done:
            try:
                out.append((future, future.result()))
            except BrokenProcessPool as exc:
                self._pool = None  # broken for good: the next submit builds a new one
                out.append((future, Outcome(LOST, None, f"worker process died ({exc})")))
        return out

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None


def _ray_task(task: Task) -> Outcome:
    set_threads(max(1, task.threads))
    return run_task(task)


class RayExecutor:
    """Ray tasks with ``num_cpus``/``num_gpus`` each, locally or on the cluster at ``address``."""

    name = "ray"

    def __init__(
        self,
        *,
        num_cpus: float,
        num_gpus: float,
        address: str | None = None,
        jobs: int | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise SplinescopeError(
                "--backend ray needs Ray: pip install 'splinescope[ray]'"
            ) from exc
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                if jobs is not None:
                    kwargs["num_cpus"] = max(1, round(jobs * max(num_cpus, 1.0)))
            else:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except Exception as exc:
                raise SplinescopeError(
                    f"--backend ray: cannot start or reach Ray"
                    f"{f' at --address {address}' if address else ''}: {exc}"
                ) from exc
            self._started = True
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        self.slots = max(1, int(cpus // num_cpus) if num_cpus > 0 else int(cpus))
        self.threads = max(1, int(num_cpus))
        self._remote = ray.remote(_ray_task).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0
        )

    def submit(self, task: Task) -> Any:
        return self._remote.remote(task)

    def wait(self, handles: Collection[Any], timeout: float) -> list[tuple[Any, Outcome]]:
        ray = self._ray
        ready, _ = ray.wait(list(handles), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append((ref, ray.get(ref)))
            except ray.exceptions.RayError as exc:
                out.append((ref, Outcome("failed", None, f"Ray task failed: {exc}", str(exc))))
        return out

    def close(self, cancel: bool = False) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False
