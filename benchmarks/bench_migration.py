"""Timing of decision_boundary_points (1,000 MNIST train points) and migration_profile (a plane
through three MNIST train points of different classes) on an MLP 784-200x3-10 trained briefly.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_migration.py
"""

import time

import torch
from torch import nn

from splinescope.data import load_dataset
from splinescope.geometry import (
    decision_boundary_points,
    migration_profile,
    plane_through,
    regions_in_plane,
)

torch.set_num_threads(1)
data = load_dataset("mnist", seed=0)
torch.manual_seed(0)
model = nn.Sequential(
    nn.Linear(784, 200),
    nn.ReLU(),
    nn.Linear(200, 200),
    nn.ReLU(),
    nn.Linear(200, 200),
    nn.ReLU(),
    nn.Linear(200, 10),
)
# brief training so that the plane holds a decision boundary between classes
opt = torch.optim.AdamW(model.parameters(), 1e-3)
for _step in range(300):
    idx = torch.randint(0, 1000, (200,))
    loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
print("train acc", float((model(data.x_train).argmax(1) == data.y_train).float().mean()))
t = time.perf_counter()
bp = decision_boundary_points(model, data.x_train)
dt = time.perf_counter() - t
print(
    f"boundary points: {len(bp)} found, {len(bp.skipped)} skipped, {dt:.2f}s; steps mean {bp.steps.double().mean():.1f} max {int(bp.steps.max())}; converged {bool(bp.converged.all())}; max|gap| {bp.gap.abs().max():.2e}"
)
t = time.perf_counter()
bp = decision_boundary_points(model, data.x_train, n_scan=8)
dt = time.perf_counter() - t
print(f"with n_scan=8: {dt:.2f}s, mean distance {bp.distance.mean():.3f}")
ys = data.y_train
i0 = 0
i1 = int((ys != ys[0]).nonzero()[0])
i2 = int(((ys != ys[0]) & (ys != ys[i1])).nonzero()[0])
plane = plane_through(
    data.x_train[i0].double(), data.x_train[i1].double(), data.x_train[i2].double()
)
t = time.perf_counter()
part = regions_in_plane(model.double(), plane.origin, plane.u, plane.v, plane.extent)
dt = time.perf_counter() - t
print(f"plane partition: {part.n_regions} regions, {dt:.2f}s, extent {plane.extent:.2f}")
for signed in (None, int(ys[i0])):
    t = time.perf_counter()
    prof = migration_profile(part, band=0.1 * plane.extent, bins=16, signed_class=signed)
    dt = time.perf_counter() - t
    print(
        f"migration profile signed={signed}: {dt:.2f}s; decision segments {prof.n_decision_segments}; band share {prof.band_length_share:.3f} area share {prof.band_area_share:.3f} enrichment {prof.band_enrichment:.2f}; unlocated {prof.n_unlocated}"
    )
