"""Exact partitions against the exact-arithmetic oracle (:mod:`exact_oracle`).

The oracle clips polygons (and intervals) with integer/rational arithmetic, so its set of
activation patterns of positive area is the truth; the float64 engine must reproduce it
wherever the regions are wider than the vertex tolerance (module docstring of ``plane``).
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from exact_oracle import (
    centroid,
    code_set,
    plane_regions,
    polygon_area,
    segment_regions,
)
from torch import nn

from splinescope.geometry.codes import states_to_bits
from splinescope.geometry.exact import regions_in_plane, regions_on_segment
from splinescope.nn import describe, record_states

E1, E2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])


def mlp(widths, seed):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def pooled(seed):
    """Linear -> ReLU -> max-pool windows of 3 over two channels -> Linear -> ReLU -> head."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, 24),
        nn.ReLU(),
        nn.Unflatten(1, (2, 12)),
        nn.MaxPool1d(3),
        nn.Flatten(),
        nn.Linear(8, 8),
        nn.ReLU(),
        nn.Linear(8, 1),
    )


def forward_codes(model, x):
    """Packed codes of inputs ``x [N, 2]`` by a plain float64 forward pass (no geometry)."""
    double = copy.deepcopy(model).double()
    units = describe(double, x[:1])
    states = record_states(double, x)
    bits = [states_to_bits(states[layer.name].numpy(), layer.kind) for layer in units.layers]
    return np.packbits(np.concatenate(bits, 1), axis=1)


def check_plane_against_oracle(model, extent, origin=None):
    """Tiling with positive areas, and the engine's codes are exactly the oracle's."""
    origin = torch.zeros(2) if origin is None else origin
    part = regions_in_plane(model, origin, E1, E2, extent)
    truth = plane_regions(model, origin, E1, E2, extent)
    total = (2 * extent) ** 2
    assert (part.areas > 0).all()
    assert part.areas.sum() == pytest.approx(total, rel=1e-10)
    assert len(np.unique(part.codes, axis=0)) == part.n_regions
    assert float(sum(polygon_area(r.shape) for r in truth)) == pytest.approx(total, rel=1e-12)
    engine, exact = code_set(part.bits()), code_set([r.bits for r in truth])
    assert not exact - engine, f"{len(exact - engine)} exact region(s) missing"
    assert not engine - exact, f"{len(engine - exact)} region(s) that do not exist"
    return part, truth


def test_oracle_counts_a_grid_and_splits_only_with_positive_area():
    """Units s − k, t − k for k = −1, 0, 1/2, 1: the lines at ±1 lie on the square's edges and
    add nothing, so 3 × 3 cells."""
    layer = nn.Linear(2, 8)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4))
        layer.bias.copy_(-torch.tensor([-1.0, 0.0, 0.5, 1.0] * 2))
    truth = plane_regions(nn.Sequential(layer, nn.ReLU()), torch.zeros(2), E1, E2, 1.0)
    assert len(truth) == 9
    assert min(polygon_area(r.shape) for r in truth) > 0


@pytest.mark.parametrize("seed", [2, 17])
def test_tiling_equals_oracle_depth3_width32(seed):
    """2-32-32-32-1 slices where an area threshold loses exactly one region."""
    check_plane_against_oracle(mlp((2, 32, 32, 32, 1), seed), 3.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_maxpool_tiling_equals_oracle(seed):
    part, _ = check_plane_against_oracle(pooled(seed), 2.0)
    assert "argmax" in part.layer_kinds


@pytest.mark.slow
def test_deep_wide_slice_equals_oracle():
    """The benchmark's 2-64-64-64-64 slice (about 2·10⁴ regions, slivers among them)."""
    torch.manual_seed(0)
    layers = []
    for a, b in itertools.pairwise([2, 64, 64, 64, 64]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    check_plane_against_oracle(nn.Sequential(*layers, nn.Linear(64, 1)), 3.0)


# --------------------------------------------------------------------------- slivers

P = (0.375, -0.25)  # where the three lines nearly meet (dyadic: exact in float32)


def near_concurrent(delta: float) -> nn.Sequential:
    """Three lines from three layers through P, the last one offset by ``delta``.

    Layer 1: ``a = relu(s + t/2 − 1/4)`` (through P) and two pass-through units S = s + 10,
    T = t + 10 (active on the whole square). Layer 2: ``b = relu(a/2 + f2)`` with
    ``f2 = −3/4·S + T + c2`` through P, plus the pass-throughs. Layer 3:
    ``relu(b + f3 − delta)`` with ``f3 = S − T/2 + c3`` through P. All weights are dyadic,
    so lines 1 and 2 meet exactly at P and line 3 (bent where a and b switch) misses it by
    ~delta: two triangles of area ~delta² with a corner at P.
    """
    net = nn.Sequential(
        nn.Linear(2, 3, dtype=torch.float64),
        nn.ReLU(),
        nn.Linear(3, 3, dtype=torch.float64),
        nn.ReLU(),
        nn.Linear(3, 1, dtype=torch.float64),
        nn.ReLU(),
        nn.Linear(1, 1, dtype=torch.float64),
    )
    ps, pt = P[0] + 10, P[1] + 10  # P in pass-through coordinates
    values = {
        "0.weight": [[1.0, 0.5], [1.0, 0.0], [0.0, 1.0]],
        "0.bias": [-0.25, 10.0, 10.0],
        "2.weight": [[0.5, -0.75, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        "2.bias": [0.75 * ps - pt, 0.0, 0.0],
        "4.weight": [[1.0, 1.0, -0.5]],
        "4.bias": [-ps + 0.5 * pt - delta],  # float64: delta must not round away
        "6.weight": [[1.0]],
        "6.bias": [0.0],
    }
    net.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()})
    return net


@pytest.mark.parametrize("relative_area", [1e-12, 1e-14, 1e-16, 1e-18])
def test_slivers_of_nearly_concurrent_lines_are_regions(relative_area):
    delta = np.sqrt(relative_area / 1.53)  # the smaller triangle: 1.53·delta² of the square
    model = near_concurrent(delta)
    part, truth = check_plane_against_oracle(model, 1.0)
    areas = np.array([float(polygon_area(r.shape)) for r in truth]) / 4.0
    slivers = [r for r, a in zip(truth, areas, strict=True) if a < 1e-9]
    assert areas.min() == pytest.approx(relative_area, rel=0.05)
    assert len(slivers) == 2  # two triangles with a corner at P
    # Every pattern seen at a sliver's centroid (plain forward pass) is one of the regions.
    centres = np.array([centroid(r.shape) for r in slivers])
    codes = forward_codes(model, part.to_input(centres))
    assert (part.region_of_codes(codes) >= 0).all()


# --------------------------------------------------------------------------- segments


def check_segment_against_oracle(model, a, b):
    part = regions_on_segment(model, a, b)
    truth = segment_regions(model, a, b)
    assert part.n_regions == len(truth)
    np.testing.assert_array_equal(part.bits().astype(np.uint8), [r.bits for r in truth])
    exact = np.array([float(r.shape[0]) for r in truth[1:]])
    np.testing.assert_allclose(part.breakpoints, exact, rtol=0, atol=1e-12)
    assert (part.ends > part.starts).all()
    return part, truth


@pytest.mark.parametrize("seed", range(4))
def test_segment_equals_oracle(seed):
    g = torch.Generator().manual_seed(seed)
    model = mlp((3, 24, 24, 24, 2), seed)
    check_segment_against_oracle(
        model, torch.randn(3, generator=g) * 3, torch.randn(3, generator=g) * 3
    )


def test_segment_through_nearly_concurrent_lines():
    """A segment across the smaller triangle at P: a piece ~1e-8 long between two lines."""
    model = near_concurrent(1e-8)
    truth = plane_regions(model, torch.zeros(2), E1, E2, 1.0)
    small = min(truth, key=lambda r: polygon_area(r.shape))
    c = np.array(centroid(small.shape))
    away = (c - np.array(P)) / np.linalg.norm(c - np.array(P))
    across = np.array([-away[1], away[0]])
    a, b = torch.tensor(c - 0.5 * across), torch.tensor(c + 0.5 * across)
    part, _ = check_segment_against_oracle(model, a, b)
    assert np.diff(part.breakpoints).min() < 1e-7


def test_segment_maxpool_equals_oracle():
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        model = pooled(seed)
        part, _ = check_segment_against_oracle(
            model, torch.randn(2, generator=g) * 2, torch.randn(2, generator=g) * 2
        )
        assert "argmax" in part.layer_kinds
