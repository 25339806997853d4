"""Local complexity: naive published algorithm vs splinescope vs the bare forward pass.

Run:  .venv/bin/python benchmarks/bench_local_complexity.py [--repeats 3] [--workloads W1 W2]

Workloads (issue #2):
  W1  MLP 784-200-200-200-200-10 ReLU, 1024 points uniform in [0,1]^784, 50 vertices, r = 1.0 and 0.05
  W2  CNN conv3x3 32-64-128-128 + ReLU, 2x2 max-pool after convs 2-4, Linear(2048, 10);
      256 points of 3x32x32, 40 vertices, r = 0.005

Variants, each timed in its own subprocess (so peak RSS is its own):
  (a) naive  — a plain re-implementation of the published algorithm (tests/published_lc.py):
               hull built per 32-point batch, hooks keep every layer's activations of the batch,
               then signs are compared (the published batch size is 32 points).
  (b) ours   — splinescope.local_complexity with its defaults (same layers as (a)).
  (c) floor  — the bare eager forward pass of all hull vertices (hull prebuilt, nothing measured),
               at the batch size (b) chose.
  (c') floor-nhwc — W2 only: the same with the hull in channels-last layout (what (b) uses on CPU
               for conv nets; oneDNN convolutions and max-pool run faster in it).
Peak extra memory = peak RSS during the run minus RSS before it. Timings: min over repeats.
"""

from __future__ import annotations

import argparse
import json
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
        elif variant == "ours":
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


def run_child(variant: str, workload: str, n_points: int) -> dict:
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
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def variants(workload: str) -> tuple[str, ...]:
    """(c') is the floor with NHWC input, the layout splinescope picks for conv nets on CPU."""
    return (
        ("naive", "ours", "floor", "floor-nhwc") if workload == "W2" else ("naive", "ours", "floor")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["W1-r1", "W1-r0.05", "W2"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    torch.set_num_threads(args.threads)
    if args.child:
        variant, workload, n = args.child
        print(json.dumps(child(variant, workload, int(n))))
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
    if "W1-r1" in args.workloads:
        big = run_child("ours", "W1-r1", 8192)
        print(
            f"W1-r1 ours at N=8192: {big['seconds']:.3f} s, peak extra {big['peak_extra_mb']:.0f} MB "
            f"(N=1024: {rows['W1-r1']['ours']['peak_extra_mb']:.0f} MB) — the peak is set by the budget, not N"
        )


if __name__ == "__main__":
    main()
