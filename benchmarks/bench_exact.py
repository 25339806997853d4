"""Exact partitions in a planar slice: regions per second, and the rasterised brute force.

Run:  .venv/bin/python benchmarks/bench_exact.py [--repeats 3] [--raster 2000] [--workloads i ii iii]

Workloads (issue #4), PyTorch's default initialisation after ``torch.manual_seed(0)``; every
hidden Linear is followed by a ReLU, and a Linear head (1 output; 10 for (ii)) ends the net:
  (i)   MLP 2-64-64-64-64, slice s·e1 + t·e2 with s, t ∈ [−3, 3]
  (ii)  MLP 784-128-128, plane through 3 inputs uniform in [0, 1]^784 (plane_through, margin 1.5)
  (iii) MLP 2-128-128-128-128, slice of extent 4 (about 9·10⁴ regions)
Timing: wall time of ``regions_in_plane`` (tracing, splitting, codes, affine maps, areas and the
decision boundary all included), min over repeats; regions/s = regions / that time.
Brute force for (i): activation patterns of an N × N raster of the square (cell centres) by
``splinescope.nn.record_states`` (float64 forward of a float64 copy), counted as distinct
bit-packed codes, in chunks of 2¹⁸ points; then checked: every raster pattern must be one of
the exact regions' codes (``raster_patterns_missing_from_exact`` must be 0).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from splinescope.geometry.exact import plane_through, regions_in_plane
from splinescope.nn import record_states


def mlp(widths: list[int], n_out: int) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], n_out))


def workload(name: str):
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    if name == "i":
        return mlp([2, 64, 64, 64, 64], 1), torch.zeros(2), e1, e2, 3.0
    if name == "iii":
        return mlp([2, 128, 128, 128, 128], 1), torch.zeros(2), e1, e2, 4.0
    if name == "ii":
        model = mlp([784, 128, 128], 10)
        x = torch.rand(3, 784, generator=torch.Generator().manual_seed(1))
        plane = plane_through(x[0], x[1], x[2])
        return model, plane.origin, plane.u, plane.v, plane.extent
    raise SystemExit(f"unknown workload {name!r}")


def time_exact(name: str, repeats: int) -> dict:
    model, origin, u, v, extent = workload(name)
    best, part = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        part = regions_in_plane(model, origin, u, v, extent)
        best = min(best, time.perf_counter() - start)
    return {
        "workload": name,
        "regions": part.n_regions,
        "seconds": round(best, 3),
        "regions_per_s": round(part.n_regions / best),
        "per_layer": part.layer_region_counts.tolist(),
        "min_area": float(part.areas.min()),
        "area_sum_error": float(abs(part.areas.sum() - (2 * extent) ** 2)),
    }


def raster(name: str, n: int) -> dict:
    model, origin, u, v, extent = workload(name)
    model = model.double()
    ticks = ((np.arange(n) + 0.5) / n * 2 - 1) * extent
    seen: set[bytes] = set()
    start = time.perf_counter()
    grid_s, grid_t = np.meshgrid(ticks, ticks, indexing="ij")
    st = np.stack([grid_s.ravel(), grid_t.ravel()], 1)
    chunk = 1 << 18
    for begin in range(0, len(st), chunk):
        part = torch.as_tensor(st[begin : begin + chunk], dtype=torch.float64)
        x = origin + part[:, :1] * u + part[:, 1:] * v
        states = record_states(model, x, batch_size=chunk)
        bits = np.concatenate([(s.numpy() > 0) for s in states.values()], axis=1)
        packed = np.packbits(bits, axis=1)
        rows = np.unique(packed, axis=0)
        seen.update(r.tobytes() for r in rows)
    seconds = time.perf_counter() - start
    exact = regions_in_plane(model, origin, u, v, extent)
    known = {row.tobytes() for row in exact.codes}
    return {
        "workload": name,
        "raster": n,
        "distinct_patterns": len(seen),
        "seconds": round(seconds, 2),
        "exact_regions": exact.n_regions,
        "raster_patterns_missing_from_exact": len(seen - known),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--raster", type=int, default=2000, help="raster side; 0 skips it")
    parser.add_argument("--workloads", nargs="+", default=["i", "ii", "iii"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.workloads:
        print(json.dumps(time_exact(name, args.repeats)))
    if args.raster and "i" in args.workloads:
        print(json.dumps(raster("i", args.raster)))


if __name__ == "__main__":
    main()
