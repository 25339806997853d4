"""Local complexity: naive published algorithm vs splinescope vs the bare forward pass.

Run:  .venv/bin/python benchmarks/bench_local_complexity.py [--repeats 3] [--workloads W1-r1 W1-r0.05 W2]
          [--baseline-src DIR] [--preset-probes]

Workloads (issue #2):
  W1  MLP 784-200-200-200-200-10 ReLU, 1024 points uniform in [0,1]^784, 50 vertices, r = 1.0 and 0.05
  W2  CNN conv3x3 32-64-128-128 + ReLU, 2x2 max-pool after convs 2-4, Linear(2048, 10);
      256 points of 3x32x32, 40 vertices, r = 0.005

Variants, each timed in its own subprocess (so peak RSS is its own):
  (a) naive  — a plain re-implementation of the published algorithm (tests/published_lc.py):
               hull built per 32-point batch, hooks keep every layer's activations of the batch,
               then signs are compared (the published batch size is 32 points).
  (b) ours   — splinescope.local_complexity with its defaults (same layers as (a)).
  (b0) before — the same call on another source tree (``--baseline-src DIR``: DIR/src is put
               first on the path; e.g. ``git archive <commit> src | tar -x -C DIR``).
  (c) floor  — the bare eager forward pass of all hull vertices (hull prebuilt, nothing measured),
               at the batch size (b) chose.
  (c') floor-nhwc — W2 only: the same with the hull in channels-last layout (what (b) uses on CPU
               for conv nets; oneDNN convolutions and max-pool run faster in it). W2's ratios
               are taken against (c').
The last table puts ours/floor (and before/floor) of every workload side by side.

How (b) gets below the forward floor on W1: on a shared frame the first affine layer is
computed once per centre (W x + b) and once per direction (r·W u_k) — N + V/2 rows instead of
N·V — and its units are counted from those alone (cut iff the sign of fl(c ± f_k) is not
constant: |c| ≤ max_k |f_k|, except c = max_k |f_k| = 0; bit-identical to the vertex test,
tests/nn/test_states.py). Deeper layers run on the vertices fl(c ± f_k), with ReLUs in place
and Linear outputs written into buffers reused from batch to batch (no page faults); the last
layer's ReLU is not run. ``torch.compile`` was tried for the fused cut test + ReLU and is not
used: no faster than eager amin/amax + clamp_ on this CPU, and 12 s to compile.

``--preset-probes`` times one probe step of the ``lc-phases-mnist`` preset's LC probes
(3 radii x train/test/random x 1,000 points, every Linear output, 50 vertices), first call
and steady state, for ours (and before).
Peak extra memory = peak RSS during the run minus RSS before it. Timings: min over repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
THREADS = torch.get_num_threads()
sys.path.insert(0, str(ROOT / "tests"))


def w1_model() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    d = 784
    for _ in range(4):
        layers += [nn.Linear(d, 200), nn.ReLU()]
        d = 200
    return nn.Sequential(*layers, nn.Linear(200, 10))


class W2CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        chans = [3, 32, 64, 128, 128]
        self.convs = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(4)
        )
        self.acts = nn.ModuleList(nn.ReLU() for _ in range(4))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(2048, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (conv, act) in enumerate(zip(self.convs, self.acts)):
            x = act(conv(x))
            if i >= 1:
                x = self.pool(x)
        return self.head(x.flatten(1))


def setup(workload: str, n_points: int):
    gen = torch.Generator().manual_seed(1)
    if workload.startswith("W1"):
        model = w1_model().eval()
        points = torch.rand(n_points, 784, generator=gen)
        radius = 1.0 if workload == "W1-r1" else 0.05
        return model, points, radius, 50, [m for m in model if isinstance(m, nn.Linear)][:-1], "*"
    model = W2CNN().eval()
    points = torch.rand(n_points, 3, 32, 32, generator=gen)
    return model, points, 0.005, 40, list(model.convs), "acts.*"


def hull_of(points, n_vertices, radius):
    from splinescope.geometry import cross_polytope, ortho_frame

    frame = ortho_frame(tuple(points.shape[1:]), n_vertices // 2, seed=0)
    return cross_polytope(points, frame, radius)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(variant: str, workload: str, n_points: int) -> dict:
    import splinescope
    from published_lc import naive_counts

    model, points, radius, n_vertices, modules, glob = setup(workload, n_points)
    # (b)'s batch size, found without running it:
    probe = splinescope.local_complexity(
        model, points[:1], radius=radius, n_vertices=n_vertices, layers=glob
    )
    units = splinescope.describe(model, points[:1], glob)
    widest = max(
        [points[0].numel()] + [int(torch.Size(layer.shape).numel()) for layer in units.layers]
    )
    from splinescope.geometry.complexity import DEFAULT_MEMORY_BUDGET_MB, default_batch_size

    batch = default_batch_size(widest, n_vertices, 4, DEFAULT_MEMORY_BUDGET_MB)
    del probe
    hull = hull_of(points, n_vertices, radius) if variant.startswith("floor") else None
    if variant == "floor-nhwc":
        hull = (
            hull.flatten(0, 1)
            .contiguous(memory_format=torch.channels_last)
            .unflatten(0, hull.shape[:2])
        )
    base = rss_mb()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with torch.no_grad():
        if variant == "naive":
            result = torch.cat(
                [
                    naive_counts(
                        model,
                        hull_of(points[i : i + 32], n_vertices, radius),
                        modules,
                        batch_size=32,
                    )
                    for i in range(0, len(points), 32)
                ]
            )
            total = float(result.sum(1).double().mean())
        elif variant in ("ours", "before"):
            result = splinescope.local_complexity(
                model, points, radius=radius, n_vertices=n_vertices, layers=glob
            )
            total = result.mean_total
        else:
            for i in range(0, len(points), batch):
                model(hull[i : i + batch].flatten(0, 1))
            total = float("nan")
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start.ru_utime - cpu_start.ru_stime
    peak = usage.ru_maxrss / 1024
    return {
        "seconds": seconds,
        "cpu": cpu,
        "peak_extra_mb": max(0.0, peak - base),
        "lc": total,
        "batch": batch,
    }


BASELINE_SRC: str | None = None


def preset_child() -> dict:
    """One probe step of the lc-phases-mnist preset's LC probes: first call, then steady."""
    from splinescope.monitor import ProbeContext
    from splinescope.monitor.probes import LocalComplexityProbe
    from splinescope.presets import preset_config
    from splinescope.train.build import load_data, make_model, make_probes

    config = preset_config("lc-phases-mnist")
    data = load_data(config)
    torch.manual_seed(config.seed)
    model = make_model(config, data)
    probes = [p for p, _ in make_probes(config) if isinstance(p, LocalComplexityProbe)]
    context = ProbeContext.from_data(data, n_random=config.n_random, seed=config.seed)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for probe in probes:
            probe.compute(model, context)
        times.append(time.perf_counter() - start)
    return {
        "first": times[0],
        "steady": min(times[1:]),
        "probes": [f"{p.radius}:{'/'.join(p.splits)}x{p.n_points}" for p in probes],
    }


def run_child(variant: str, workload: str, n_points: int) -> dict:
    env = dict(os.environ)
    if variant == "before":
        env["PYTHONPATH"] = str(Path(BASELINE_SRC) / "src") + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            variant,
            workload,
            str(n_points),
            "--threads",
            str(THREADS),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def variants(workload: str) -> tuple[str, ...]:
    """(c') is the floor with NHWC input, the layout splinescope picks for conv nets on CPU."""
    names = ["naive", "ours", "floor"] + (["floor-nhwc"] if workload == "W2" else [])
    return tuple(names + (["before"] if BASELINE_SRC else []))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["W1-r1", "W1-r0.05", "W2"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--baseline-src", help="a source tree to time as (b0) before")
    parser.add_argument("--preset-probes", action="store_true", help="time lc-phases-mnist's LC")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global THREADS, BASELINE_SRC
    THREADS = args.threads
    BASELINE_SRC = args.baseline_src
    torch.set_num_threads(args.threads)
    if args.child:
        variant, workload, n = args.child
        result = preset_child() if workload == "preset" else child(variant, workload, int(n))
        print(json.dumps(result))
        return
    sizes = {"W1-r1": 1024, "W1-r0.05": 1024, "W2": 256}
    print(
        f"torch {torch.__version__}, threads {args.threads}, float32; min of {args.repeats} runs "
        "(wall seconds); cpu s = user + sys of the run"
    )
    header = f"{'workload':10} {'variant':6} {'seconds':>8} {'cpu s':>7} {'points/s':>9} {'peak MB':>8} {'mean LC':>8} {'batch':>6}"
    print(header)
    rows = {}
    for workload in args.workloads:
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for variant in variants(workload):
                r = run_child(variant, workload, sizes[workload])
                if variant not in best or r["seconds"] < best[variant]["seconds"]:
                    best[variant] = r
        for variant, r in best.items():
            print(
                f"{workload:10} {variant:6} {r['seconds']:8.3f} {r['cpu']:7.2f} {sizes[workload] / r['seconds']:9.0f} "
                f"{r['peak_extra_mb']:8.0f} {r['lc']:8.2f} {r['batch']:6d}"
            )
        rows[workload] = best
        a, b, c = (best[v]["seconds"] for v in ("naive", "ours", "floor"))
        ca, cb, cc = (best[v]["cpu"] for v in ("naive", "ours", "floor"))
        print(
            f"{workload:10} wall ratios (a)/(b) = {a / b:.2f}  (b)/(c) = {b / c:.2f};"
            f"  cpu ratios (a)/(b) = {ca / cb:.2f}  (b)/(c) = {cb / cc:.2f}"
        )
        if "floor-nhwc" in best:
            print(
                f"{workload:10} (b)/(c') = {b / best['floor-nhwc']['seconds']:.2f} against the NHWC floor"
            )
    print("\nours/floor side by side (W2 against the NHWC floor; before = --baseline-src)")
    print(
        f"{'workload':10} {'radius':>6} {'ours/floor':>10} {'before/floor':>12} {'naive/ours':>10}"
    )
    for workload, best in rows.items():
        floor = best["floor-nhwc" if "floor-nhwc" in best else "floor"]["seconds"]
        radius = setup(workload, 1)[2]
        before = best["before"]["seconds"] / floor if "before" in best else float("nan")
        print(
            f"{workload:10} {radius:6g} {best['ours']['seconds'] / floor:10.2f} {before:12.2f} "
            f"{best['naive']['seconds'] / best['ours']['seconds']:10.2f}"
        )
    if args.preset_probes:
        print(
            "\nlc-phases-mnist LC probes, seconds per probe step (3 radii x 3 sets x 1000 points)"
        )
        for variant in ("ours", "before") if BASELINE_SRC else ("ours",):
            r = run_child(variant, "preset", 0)
            print(
                f"  {variant:6} first call {r['first']:.2f} s, steady {r['steady']:.2f} s  {r['probes']}"
            )
    if "W1-r1" in args.workloads:
        big = run_child("ours", "W1-r1", 8192)
        print(
            f"W1-r1 ours at N=8192: {big['seconds']:.3f} s, peak extra {big['peak_extra_mb']:.0f} MB "
            f"(N=1024: {rows['W1-r1']['ours']['peak_extra_mb']:.0f} MB) — the peak is set by the budget, not N"
        )


if __name__ == "__main__":
    main()
