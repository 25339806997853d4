"""Workloads for the store's load and scale figures (used by tests and benchmarks/bench_store.py).

- :func:`long_run`: one run of ``n_steps`` probe steps x ``n_keys`` scalar keys (accuracy's
  four keys plus generic probes), with an array at ``n_array_steps`` of them.
- :func:`concurrent_writers`: ``n_writers`` processes each writing its own run, one committed
  transaction of ``keys_per_step`` scalars per step, for ``seconds``, while this process
  writes reports of those runs in a loop; every acknowledged row is counted and checked
  against the store.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splinescope.store import RunStore, load_metrics, load_runs

ACCURACY_KEYS = ("train_acc", "test_acc", "train_loss", "test_loss")


def long_run(
    runs_dir: Path,
    *,
    n_steps: int = 2000,
    n_keys: int = 50,
    n_array_steps: int = 200,
    array_shape: tuple[int, ...] = (32, 32),
    step_every: int = 50,
    name: str = "long",
) -> str:
    """Write the long run into ``runs_dir``; return its id. Steps ``0, step_every, ...``."""
    rng = np.random.default_rng(0)
    others = n_keys - len(ACCURACY_KEYS)
    per_probe = 12
    probes = {
        f"probe{p}": [f"key{k:02d}" for k in range(p * per_probe, min(others, (p + 1) * per_probe))]
        for p in range((others + per_probe - 1) // per_probe)
    }
    steps = np.arange(n_steps) * step_every
    array_at = set(steps[np.linspace(0, n_steps - 1, n_array_steps).round().astype(int)].tolist())
    with RunStore(runs_dir) as store:
        run_id = store.create_run(name, {"name": name, "steps": int(steps[-1])}, seed=0)
        for i, step in enumerate(steps.tolist()):
            t = (i + 1) / n_steps
            with store.batch():
                store.log_scalars(
                    run_id,
                    step,
                    "accuracy",
                    {
                        "train_acc": min(1.0, 0.1 + 2 * t),
                        "test_acc": 0.1 + 0.8 * t**2,
                        "train_loss": 1.0 - 0.9 * t,
                        "test_loss": 1.1 - 0.8 * t,
                    },
                )
                for probe, keys in probes.items():
                    store.log_scalars(
                        run_id, step, probe, {k: float(rng.normal(t, 0.05)) for k in keys}
                    )
                if step in array_at:
                    store.log_array(
                        run_id, step, "probe0", "field", rng.random(array_shape, dtype=np.float32)
                    )
        store.set_status(run_id, "finished")
    return run_id


def _writer(runs_dir: str, index: int, seconds: float, keys: int, out: mp.Queue) -> None:
    acked = 0
    errors: list[str] = []
    store = RunStore(runs_dir)
    run_id = store.create_run(f"writer{index}", {"writer": index}, seed=index)
    deadline = time.monotonic() + seconds
    step = 0
    while time.monotonic() < deadline:
        try:
            store.log_scalars(run_id, step, "load", {f"k{k}": float(step + k) for k in range(keys)})
            acked += keys
        except Exception as exc:  # counted, never hidden
            errors.append(f"{type(exc).__name__}: {exc}")
        step += 1
    store.set_status(run_id, "finished")
    store.close()
    out.put((run_id, acked, step, errors))


@dataclass(frozen=True)
class LoadResult:
    """What :func:`concurrent_writers` measured."""

    writers: int
    seconds: float
    rows_acknowledged: int
    rows_stored: int
    rows_lost: int
    rows_wrong: int
    writer_errors: list[str]
    reports: int
    report_errors: list[str]
    report_seconds_max: float

    @property
    def rows_per_second(self) -> float:
        return self.rows_acknowledged / self.seconds


def concurrent_writers(
    runs_dir: Path, *, n_writers: int = 8, seconds: float = 60.0, keys_per_step: int = 10
) -> LoadResult:
    """Run the writers and a report-writing reader at once; check every acknowledged row."""
    from splinescope.report import report_command

    runs_dir.mkdir(parents=True, exist_ok=True)
    RunStore(runs_dir).close()  # the schema exists before the writers race
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(str(runs_dir), i, seconds, keys_per_step, queue))
        for i in range(n_writers)
    ]
    began = time.monotonic()
    for p in procs:
        p.start()
    reports, report_errors, slowest = 0, [], 0.0
    out = runs_dir / "load-report.html"
    while any(p.is_alive() for p in procs) and time.monotonic() - began < seconds + 120:
        runs = load_runs(runs_dir)
        if len(runs):
            t0 = time.perf_counter()
            try:
                report_command([runs.iloc[reports % len(runs)]["run_id"]], runs_dir, out)
                reports += 1
            except Exception as exc:
                report_errors.append(f"{type(exc).__name__}: {exc}")
            slowest = max(slowest, time.perf_counter() - t0)
        else:
            time.sleep(0.1)
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    elapsed = time.monotonic() - began
    acked = stored = wrong = 0
    writer_errors: list[str] = []
    for run_id, n_acked, _steps, errors in results:
        writer_errors += errors
        acked += n_acked
        metrics = load_metrics(runs_dir, run_id)
        stored += len(metrics)
        expected = metrics["step"] + metrics["key"].str[1:].astype(int)
        wrong += int((metrics["value"] != expected).sum())
    return LoadResult(
        writers=n_writers,
        seconds=elapsed,
        rows_acknowledged=acked,
        rows_stored=stored,
        rows_lost=acked - stored,
        rows_wrong=wrong,
        writer_errors=writer_errors,
        reports=reports,
        report_errors=report_errors,
        report_seconds_max=slowest,
    )


def file_mb(path: Path) -> float:
    return os.path.getsize(path) / 2**20
