"""Probe cost table: what each probe of each preset costs, how often it runs, and its share of
the run's wall time; the default probes' overhead on grok-digits (target ≤ 10 %).

Run:

    OMP_WAIT_POLICY=PASSIVE flock /tmp/bench.lock .venv/bin/python benchmarks/bench_monitor.py \
        [--presets grok-digits,grok-modular] [--steps 300] [--repeats 2] [--validate N] [--json F]

For each preset, in this process, built as :func:`splinescope.train.train` builds it:
  training   ms per step, timed over ``--steps`` steps without probes (median of 4 chunks);
             times the preset's step count, the run's bare training time;
  per probe  seconds per call through a real :class:`~splinescope.monitor.Monitor` (its model
             guard and store writes included), min of ``--repeats``, averaged over the initial
             model and the model after ``--steps`` steps; calls = the steps of its schedule
             within the preset's step count; total = cost x calls;
  checkpoint the checkpoint and model snapshot written at every probe step (each distinct step).
Share = total / (training + every probe's total + checkpoints): the part of the run's wall
time it takes. Overhead = (probes + checkpoints) / training, the monitored run's extra time.

``--validate N`` checks the estimate end to end on the first preset: ``train()`` with all its
probes vs ``--set probes=[]`` over N steps (the same schedule squeezed into N steps), measured
overhead next to the one the table predicts for N steps.

Threads: torch's default. On a machine shared by several busy processes, run with
``OMP_WAIT_POLICY=PASSIVE`` (spin-waiting OpenMP threads on contended cores slow small-matrix
steps by up to ~80x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from splinescope.monitor import Monitor, ProbeContext
from splinescope.presets import PRESETS, preset_config
from splinescope.store import RunStore
from splinescope.store.checkpoints import save_checkpoint, save_snapshot
from splinescope.train import (
    apply_overrides,
    load_data,
    make_loss,
    make_model,
    make_optimizer,
    make_probes,
    make_schedule,
    train,
)
from splinescope.train.build import BatchSampler

TARGET = 0.10


def _train(model, optimizer, loss_fn, sampler, x, y, steps: int) -> float:
    """Seconds for ``steps`` plain optimizer steps."""
    began = time.perf_counter()
    for _ in range(steps):
        index = sampler.next()
        loss = loss_fn(model(x[index]), y[index])
        loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - began


def _time_probes(monitor: Monitor, probes, repeats: int) -> dict[str, float]:
    out = {}
    for probe in probes:
        times = []
        for r in range(repeats):
            began = time.perf_counter()
            monitor.measure(r, [probe])
            times.append(time.perf_counter() - began)
        out[probe.name] = min(times)
    return out


def preset_table(name: str, steps: int, repeats: int, tmp: str) -> dict:
    """The cost table of one preset (see the module docstring)."""
    config = preset_config(name)
    torch.manual_seed(config.seed)
    data = load_data(config)
    model = make_model(config, data)
    optimizer = make_optimizer(config, model)
    loss_fn = make_loss(config.loss)
    sampler = BatchSampler(data.n_train, config.batch_size, seed=config.seed + 1)
    context = ProbeContext.from_data(
        data, loss_fn=loss_fn, n_random=config.n_random, seed=config.seed
    )
    built = make_probes(config)
    probes = [p for p, _ in built]
    calls = {p.name: len(s.steps_until(config.steps)) for p, s in built}
    probe_steps = set(make_schedule(config).steps_until(config.steps))
    for _, s in built:
        probe_steps |= set(s.steps_until(config.steps))
    store = RunStore(os.path.join(tmp, name))
    monitor = Monitor(
        model, built, store, make_schedule(config), context=context, name=name, seed=config.seed
    )

    def checkpoint_cost() -> float:
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            save_checkpoint(
                Path(tmp, f"{name}.ckpt"),
                step=0,
                model=model,
                optimizer=optimizer,
                sampler_state=sampler.state_dict(),
                monitor_state=monitor.state_dict(),
            )
            save_snapshot(Path(tmp, f"{name}.snap"), model)
            times.append(time.perf_counter() - began)
        return min(times)

    model.train()
    at_init = _time_probes(monitor, probes, repeats)
    ckpt = [checkpoint_cost()]
    chunks = [
        _train(model, optimizer, loss_fn, sampler, data.x_train, data.y_train, steps // 4)
        / (steps // 4)
        for _ in range(4)
    ]
    later = _time_probes(monitor, probes, repeats)
    ckpt.append(checkpoint_cost())
    monitor.close()
    store.close()
    per_step = statistics.median(chunks)
    cost = {k: (at_init[k] + later[k]) / 2 for k in at_init}
    train_s = per_step * config.steps
    rows = {k: {"cost_s": cost[k], "calls": calls[k], "total_s": cost[k] * calls[k]} for k in cost}
    ckpt_s = (sum(ckpt) / 2) * (len(probe_steps) if config.checkpoint else 0)
    rows["checkpoint"] = {
        "cost_s": sum(ckpt) / 2,
        "calls": len(probe_steps) if config.checkpoint else 0,
        "total_s": ckpt_s,
    }
    extra = sum(r["total_s"] for r in rows.values())
    wall = train_s + extra
    for r in rows.values():
        r["share"] = r["total_s"] / wall
    return {
        "preset": name,
        "steps": config.steps,
        "ms_per_step": 1e3 * per_step,
        "train_s": train_s,
        "probes": rows,
        "extra_s": extra,
        "wall_s": wall,
        "overhead": extra / train_s,
    }


def print_table(t: dict) -> None:
    print(
        f"\n{t['preset']}: {t['steps']:,} steps x {t['ms_per_step']:.2f} ms = "
        f"{t['train_s']:.0f} s of training; estimated wall {t['wall_s']:.0f} s"
    )
    print(f"  {'probe':14s} {'s/call':>8s} {'calls':>6s} {'total s':>8s} {'share':>7s}")
    for name, r in t["probes"].items():
        print(
            f"  {name:14s} {r['cost_s']:8.4f} {r['calls']:6d} {r['total_s']:8.1f} "
            f"{100 * r['share']:6.1f}%"
        )
    print(f"  overhead (probes + checkpoints) / training: {100 * t['overhead']:.1f} %")


def validate(name: str, steps: int, table: dict, tmp: str, repeats: int) -> dict:
    """Measured overhead of ``name`` over ``steps`` steps vs the table's prediction; each
    probe's time inside the monitored run is recorded too (min over repeats of its mean)."""
    config = apply_overrides(preset_config(name), {"steps": steps})
    bare = apply_overrides(config, {"probes": ()})
    inside: dict[str, list[float]] = {}
    original = Monitor.measure

    def timed_measure(self, step, probes=None):  # each probe alone, timed
        results = {}
        for probe in self.probes if probes is None else probes:
            began = time.perf_counter()
            results.update(original(self, step, [probe]))
            inside.setdefault(probe.name, []).append(time.perf_counter() - began)
        return results

    times: dict[str, list[float]] = {"bare": [], "monitored": []}
    per_call: dict[str, list[float]] = {}
    for r in range(repeats):
        for label, cfg in (("bare", bare), ("monitored", config)):
            inside.clear()
            Monitor.measure = timed_measure
            began = time.perf_counter()
            try:
                train(cfg, runs_dir=os.path.join(tmp, f"validate-{label}-{r}"))
            finally:
                Monitor.measure = original
            times[label].append(time.perf_counter() - began)
            for k, v in inside.items():
                per_call.setdefault(k, []).append(sum(v) / len(v))
    built = make_probes(config)
    steps_all = set(make_schedule(config).steps_until(steps))
    for _, s in built:
        steps_all |= set(s.steps_until(steps))
    calls = {p.name: len(s.steps_until(steps)) for p, s in built}
    predicted = sum(table["probes"][k]["cost_s"] * n for k, n in calls.items())
    predicted += table["probes"]["checkpoint"]["cost_s"] * len(steps_all)
    in_run = sum(min(per_call[k]) * n for k, n in calls.items())
    b, m = min(times["bare"]), min(times["monitored"])
    print(
        f"\nvalidate {name} at {steps:,} steps (min of {repeats}): bare {b:.1f} s, monitored "
        f"{m:.1f} s: the monitored run took {m - b:.1f} s more; the table predicts "
        f"{predicted:.1f} s; the probes' own time inside the run {in_run:.1f} s"
    )
    print(
        "  s/call in the run vs the table: "
        + ", ".join(f"{k} {min(per_call[k]):.4f}/{table['probes'][k]['cost_s']:.4f}" for k in calls)
    )
    return {
        "steps": steps,
        "bare_s": b,
        "monitored_s": m,
        "measured_extra_s": m - b,
        "predicted_extra_s": predicted,
        "probes_in_run_s": in_run,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="grok-digits", help="comma-separated, or 'all'")
    parser.add_argument("--steps", type=int, default=300, help="training steps timed per preset")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--validate", type=int, default=None, metavar="N")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    names = list(PRESETS) if args.presets == "all" else args.presets.split(",")
    for n in names:
        preset_config(n)  # an unknown name fails here, before anything is timed
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}"
    )
    results: dict = {"tables": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            table = preset_table(n, max(4, args.steps), args.repeats, tmp)
            print_table(table)
            results["tables"].append(table)
        if "grok-digits" in names:
            t = results["tables"][names.index("grok-digits")]
            met = "met" if t["overhead"] <= TARGET else "NOT met"
            print(
                f"\ngrok-digits default probes: overhead {100 * t['overhead']:.1f} % of training "
                f"(target ≤ {100 * TARGET:.0f} %: {met})"
            )
        if args.validate:
            results["validate"] = validate(
                names[0], args.validate, results["tables"][0], tmp, args.repeats
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return results


if __name__ == "__main__":
    main()
