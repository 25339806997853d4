"""Sweep executors on this machine: 16 tiny runs (digits, MLP width 16, 30 steps, cheap
probes) sequentially in one process, on the spawn pool (a fresh process per run, and
processes reused), and on a local Ray; wall time, per-run overhead over the in-process
training time, and speedup over sequential.

    .venv/bin/python benchmarks/bench_sweep.py [--jobs 2] [--runs 16] [--no-ray]

Per-run overhead is estimated as (wall x jobs) / runs - the mean sequential run time: the
extra core-seconds each run costs (process start and imports, store writes, shipping back;
the sequential process pays the imports once). Ray's ``ray.init`` is timed apart.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from splinescope.sweep import expand, parse_spec, run_sweep
from splinescope.sweep._worker import set_threads
from splinescope.sweep.executors import PoolExecutor
from splinescope.train import train

TINY = {
    "n_train": 120,
    "width": 16,
    "steps": 30,
    "batch_size": 40,
    "schedule": "every:10",
    "n_random": 40,
    "probes.lc.n_points": 30,
    "probes.lc.n_vertices": 8,
    "probes.fgsm": "off",
    "probes.pgd": "off",
}


def spec(runs: int):
    return parse_spec(
        {
            "name": "bench",
            "base": "grok-digits",
            "threads": 1,
            "set": TINY,
            "grid": {"init_scale": [1.0, 2.0, 4.0, 8.0]},
            "seeds": list(range(max(1, runs // 4))),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    s = spec(args.runs)
    n = len(expand(s))
    rows = []
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        set_threads(1)
        began = time.perf_counter()
        for point in expand(s):
            train(point.config, runs_dir=root / "seq")
        seq = time.perf_counter() - began
        rows.append(("sequential, one process", 1, seq))
        for label, per_process in (("pool, fresh process per run", 1), ("pool, reused", None)):
            executor = PoolExecutor(args.jobs, 1, runs_per_process=per_process)
            began = time.perf_counter()
            run_sweep(s, root / f"pool-{per_process}", executor=executor, population=False)
            executor.close()
            rows.append((label, args.jobs, time.perf_counter() - began))
        if not args.no_ray:
            import ray

            from splinescope.sweep.executors import RayExecutor

            t0 = time.perf_counter()
            ray.init(num_cpus=args.jobs, include_dashboard=False, log_to_driver=False)
            start = time.perf_counter() - t0
            executor = RayExecutor(num_cpus=1, num_gpus=0)
            began = time.perf_counter()
            run_sweep(s, root / "ray", executor=executor)
            rows.append(
                (f"ray local (+{start:.1f} s ray.init)", args.jobs, time.perf_counter() - began)
            )
            ray.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_run = seq / n
    print(f"{n} runs; sequential in-process run: {per_run:.2f} s each")
    print(f"{'executor':<34} {'jobs':>4} {'wall s':>8} {'overhead s/run':>15} {'speedup':>8}")
    for label, jobs, wall in rows:
        overhead = wall * jobs / n - per_run
        print(f"{label:<34} {jobs:>4} {wall:8.1f} {overhead:15.2f} {seq / wall:8.2f}")


if __name__ == "__main__":
    main()
