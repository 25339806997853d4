"""Monitor overhead: wall time of the grok-digits preset with vs without the default probes.

Run:  .venv/bin/python benchmarks/bench_monitor.py [--steps N] [--preset grok-digits] [--json F]

Both runs go through :func:`splinescope.train.train` with the same config (same seed, same
steps, the default log schedule of 60 points):
  bare      probes = () and no checkpoints: the training loop, the store's run row, nothing else;
  monitored the preset's default probes (accuracy, local complexity, adversarial accuracy,
            weight norms, unit activity) at every scheduled step, a checkpoint at each of them,
            and the phenomena detected at the end.
Overhead = monitored / bare - 1 (target ≤ 30 %). Also reported: the number of probe steps and the
mean cost of each probe at one step (timed on the initial model, min of 3), which with the
number of probe steps explains the overhead. Runs one after the other in this process; on a
shared machine, repeat and compare (±20 %).

Threads: torch's default (not set here). On a machine shared by several busy processes, run
with ``OMP_WAIT_POLICY=PASSIVE``: with OpenMP's default spin-waiting a 2-thread torch on 2
contended cores ran small-matrix training steps ~80x slower (FINDINGS-style note, measured).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from splinescope.monitor import ProbeContext
from splinescope.presets import preset_config
from splinescope.train import (
    apply_overrides,
    load_data,
    make_loss,
    make_model,
    make_probes,
    make_schedule,
    train,
)


def probe_costs(config) -> dict[str, float]:
    """Seconds per call of each probe on the preset's initial model (min of 3 calls)."""
    torch.manual_seed(config.seed)
    data = load_data(config)
    model = make_model(config, data)
    ctx = ProbeContext.from_data(
        data, loss_fn=make_loss(config.loss), n_random=config.lc_points, seed=config.seed
    )
    costs = {}
    for probe in make_probes(config, data):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            probe.compute(model, ctx)
            times.append(time.perf_counter() - start)
        costs[probe.name] = min(times)
    return costs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="grok-digits")
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's steps")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    config = preset_config(args.preset)
    if args.steps is not None:
        config = apply_overrides(config, {"steps": args.steps})
    bare_config = apply_overrides(config, {"probes": [], "checkpoint": False})
    n_probe_steps = len(make_schedule(config).steps_until(config.steps))

    with tempfile.TemporaryDirectory() as runs_dir:
        start = time.perf_counter()
        train(bare_config, runs_dir=os.path.join(runs_dir, "bare"))
        bare = time.perf_counter() - start
        start = time.perf_counter()
        monitored_result = train(config, runs_dir=os.path.join(runs_dir, "monitored"))
        monitored = time.perf_counter() - start

    costs = probe_costs(config)
    result = {
        "preset": args.preset,
        "steps": config.steps,
        "probe_steps": n_probe_steps,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "bare_s": round(bare, 2),
        "monitored_s": round(monitored, 2),
        "overhead": round(monitored / bare - 1, 4),
        "probe_cost_s": {k: round(v, 4) for k, v in costs.items()},
        "expected_probe_total_s": round(sum(costs.values()) * n_probe_steps, 2),
        "probe_errors": monitored_result.probe_errors,
    }
    print(
        f"{args.preset}: {config.steps:,} steps, {n_probe_steps} probe steps, "
        f"{result['threads']} torch threads, OMP_WAIT_POLICY={result['omp_wait_policy']}"
    )
    print(f"  bare       {bare:8.1f} s")
    print(
        f"  monitored  {monitored:8.1f} s   overhead {100 * result['overhead']:+.1f} % (target ≤ 30 %)"
    )
    print("  per probe step: " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in costs.items()))
    print(f"  probes x probe steps ≈ {result['expected_probe_total_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
