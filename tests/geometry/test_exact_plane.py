"""Exact regions in a planar slice against independent oracles.

Oracles: a raster of activation patterns computed by the lead's ``record_states`` (a plain
forward pass, no geometry), brute-force point-in-polygon location, closed-form counts of line
arrangements, and the model itself (affine maps must reproduce it at interior points).
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from exact_oracle import code_set, plane_regions
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.codes import states_to_bits
from splinescope.geometry.exact import plane_through, regions_in_plane
from splinescope.nn import describe, record_states

E1, E2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])


def mlp(widths, bias=True, activation=nn.ReLU, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def raster_patterns(model, partition, n):
    """(s, t) grid points [n², 2] and their full state rows (all layers, any kind) by a plain
    float64 forward pass through the lead's record_states."""
    e = partition.extent
    ticks = (np.arange(n) + 0.5) / n * 2 * e - e
    st_points = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)
    x = partition.to_input(st_points)
    states = record_states(copy.deepcopy(model).double(), x)
    return st_points, np.concatenate([s.numpy().astype(np.int64) for s in states.values()], 1)


def raster_codes(model, partition, n):
    """Grid points and their packed binary codes (for ReLU-family nets)."""
    e = partition.extent
    ticks = (np.arange(n) + 0.5) / n * 2 * e - e
    st_points = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)
    x = partition.to_input(st_points)
    double = copy.deepcopy(model).double()
    units = describe(double, x[:1])
    states = record_states(double, x)
    bits = np.concatenate(
        [states_to_bits(states[layer.name].numpy(), layer.kind) for layer in units.layers], 1
    )
    return st_points, np.packbits(bits, axis=1)


def locate(partition, points, margin=1e-9, chunk=32):
    """Brute force: index of the polygon strictly containing each point (by ``margin``), −1 if
    none; fails if a point is strictly inside two polygons."""
    verts = partition.vertices
    edge = np.roll(verts, -1, axis=1) - verts  # padding repeats vertex 0: closing edge kept
    length = np.linalg.norm(edge, axis=2)
    real = length > 0
    found = -np.ones(len(points), dtype=np.int64)
    hits = np.zeros(len(points), dtype=np.int64)
    for start in range(0, len(verts), chunk):
        v, e, ln, ok = (a[start : start + chunk] for a in (verts, edge, length, real))
        rel = points[:, None, None, :] - v[None]
        cross = e[None, ..., 0] * rel[..., 1] - e[None, ..., 1] * rel[..., 0]
        inside = ((cross > margin * ln[None]) | ~ok[None]).all(axis=2)  # [N, chunk]
        hits += inside.sum(axis=1)
        rows, cols = np.nonzero(inside)
        found[rows] = start + cols
    assert (hits <= 1).all(), "overlapping polygons"
    return found


def interior_points(partition, rng, per_region=3):
    """Random strictly interior points (convex combinations of each region's vertices)."""
    pts, rows = [], []
    for r, poly in enumerate(partition.polygons()):
        w = rng.dirichlet(np.ones(len(poly)), size=per_region)
        pts.append(w @ poly)
        rows += [r] * per_region
    return np.concatenate(pts), np.array(rows)


def check_tiling(partition, model=None):
    """Positive areas that sum to the square, one region per code; with ``model`` (an
    ``nn.Sequential`` of Linear/ReLU) the codes are exactly the exact-arithmetic oracle's."""
    total = (2 * partition.extent) ** 2
    assert (partition.areas > 0).all()
    assert partition.areas.sum() == pytest.approx(total, rel=1e-10)
    assert len(np.unique(partition.codes, axis=0)) == partition.n_regions
    assert (partition.n_vertices >= 3).all()
    if model is not None:
        truth = plane_regions(model, partition.origin, partition.u, partition.v, partition.extent)
        assert code_set(partition.bits()) == code_set([r.bits for r in truth])


def check_affine(model, partition, seed=0):
    rng = np.random.default_rng(seed)
    pts, rows = interior_points(partition, rng)
    x = partition.to_input(pts)
    with torch.no_grad():
        reference = copy.deepcopy(model).double()(x).reshape(len(pts), -1).numpy()
    got = partition.evaluate(rows, pts)
    scale = max(1.0, np.abs(reference).max())
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-9 * scale)


def check_raster_bijection(model, partition, n=120):
    """Every raster pattern belongs to exactly one polygon and every occupied polygon holds
    exactly one pattern; regions ≥ distinct raster patterns."""
    pts, patterns = raster_patterns(model, partition, n)
    where = locate(partition, pts)
    inside = where >= 0
    assert inside.mean() > 0.97  # the rest lie within 1e-9 of an edge
    keys = {}
    for r, row in zip(where[inside], patterns[inside], strict=True):
        keys.setdefault(r, set()).add(row.tobytes())
    assert all(len(v) == 1 for v in keys.values()), "one polygon holds two patterns"
    owners = {}
    for r, v in keys.items():
        owners.setdefault(next(iter(v)), set()).add(r)
    assert all(len(v) == 1 for v in owners.values()), "one pattern in two polygons"
    distinct = len({row.tobytes() for row in patterns})
    assert partition.n_regions >= distinct


def check_codes_match_raster(model, partition, n=120):
    pts, codes = raster_codes(model, partition, n)
    region = partition.region_of_codes(codes)
    assert (region >= 0).all(), "a pattern seen on the raster is missing from the regions"
    where = locate(partition, pts)
    inside = where >= 0
    np.testing.assert_array_equal(region[inside], where[inside])


@pytest.mark.parametrize("widths", [(2, 12, 1), (2, 10, 10, 3), (2, 8, 8, 8, 2)])
def test_random_mlp_against_raster(widths):
    model = mlp(widths, seed=len(widths))
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 2.0)
    check_tiling(part, model)
    check_affine(model, part)
    check_codes_match_raster(model, part)
    assert part.layer_region_counts[-1] == part.n_regions
    assert (np.diff(part.layer_region_counts) >= 0).all()


def test_closed_form_line_arrangement():
    """One ReLU layer: regions = 1 + n + (intersections inside the square) for lines in
    general position that all cross the square."""
    rng = np.random.default_rng(3)
    n, e = 9, 1.0
    # Lines through a random point of the square with random directions: all cross it.
    points = rng.uniform(-0.8, 0.8, (n, 2))
    angles = rng.uniform(0, np.pi, n)
    normals = np.stack([np.cos(angles), np.sin(angles)], 1)
    offsets = -(normals * points).sum(1)
    layer = nn.Linear(2, n)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(normals))
        layer.bias.copy_(torch.tensor(offsets))
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(n, 1))
    inside = 0
    for i, j in itertools.combinations(range(n), 2):
        p = np.linalg.solve(normals[[i, j]], -offsets[[i, j]])
        inside += bool((np.abs(p) < e).all())
    part = regions_in_plane(model, torch.zeros(2), E1, E2, e)
    assert part.n_regions == 1 + n + inside
    check_tiling(part)


def grid_net(ks, bias=True):
    """Units s − k and t − k for each k: a grid of (len(ks)+1)² axis-aligned cells."""
    n = len(ks)
    layer = nn.Linear(2, 2 * n)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0]] * n + [[0.0, 1.0]] * n))
        layer.bias.copy_(-torch.tensor(list(ks) * 2, dtype=torch.float32))
    return nn.Sequential(layer, nn.ReLU(), nn.Linear(2 * n, 1))


def test_hand_built_grid_counts_and_areas():
    ks = (-1.5, -0.5, 0.5, 1.5)
    part = regions_in_plane(grid_net(ks), torch.zeros(2), E1, E2, 2.0)
    assert part.n_regions == 25
    # Cells: widths 0.5, 1, 1, 1, 0.5 on each axis.
    widths = np.array([0.5, 1, 1, 1, 0.5])
    expected = np.sort(np.outer(widths, widths).ravel())
    np.testing.assert_allclose(np.sort(part.areas), expected, rtol=1e-12)
    check_tiling(part)


def test_unit_lines_on_the_slice_edge_make_no_slivers():
    """Lines s = ±extent, t = ±extent and through the corners are boundary, not regions."""
    ks = (-2.0, 0.0, 2.0)  # ±2 lie exactly on the edges of the square of extent 2
    part = regions_in_plane(grid_net(ks), torch.zeros(2), E1, E2, 2.0)
    assert part.n_regions == 4
    check_tiling(part)
    # A diagonal through two corners, plus the edge lines: 8 triangles... of the 4 cells.
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0], [1.0, 0.0], [0.0, 1.0]]))
        layer.bias.copy_(torch.tensor([0.0, -2.0, 2.0]))
    part = regions_in_plane(nn.Sequential(layer, nn.ReLU()), torch.zeros(2), E1, E2, 2.0)
    assert part.n_regions == 2
    check_tiling(part)


def test_bias_free_network_all_lines_through_origin():
    model = mlp((2, 7, 7, 7, 2), bias=False, seed=5)
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 1.0)
    check_tiling(part, model)
    check_affine(model, part)
    check_codes_match_raster(model, part, n=100)
    # Every region is a cone from the origin: the origin is a vertex of each polygon.
    for poly in part.polygons():
        assert np.min(np.linalg.norm(poly, axis=1)) < 1e-12
    # One bias-free layer of n distinct lines through 0 gives 2n sectors.
    single = mlp((2, 6, 1), bias=False, seed=1)
    assert regions_in_plane(single, torch.zeros(2), E1, E2, 1.0).n_regions == 12


def test_concurrent_lines_and_duplicate_units():
    """Six lines exactly concurrent at a dyadic point (every weight and bias is exact in
    float32, so the lines really meet: 12 sectors), two units duplicated."""
    centre = np.array([0.25, -0.125])
    normals = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0], [1.0, 2.0], [2.0, -1.0]])
    normals = np.concatenate([normals, normals[:2]])  # two duplicated units
    layer = nn.Linear(2, len(normals))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(normals))
        layer.bias.copy_(torch.tensor(-(normals @ centre)))
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(len(normals), 4), nn.ReLU(), nn.Linear(4, 2))
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 1.0)
    check_tiling(part, model)
    check_affine(model, part)
    check_codes_match_raster(model, part, n=100)
    assert part.layer_region_counts[0] == 12


def test_dead_unit_is_state_zero_and_splits_nothing():
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
        layer.bias.zero_()
    part = regions_in_plane(nn.Sequential(layer, nn.ReLU()), torch.zeros(2), E1, E2, 1.0)
    assert part.n_regions == 4
    assert not part.bits()[:, 1].any()


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    width=st.integers(2, 10),
    depth=st.integers(1, 3),
    extent=st.floats(0.2, 4.0),
)
def test_hypothesis_random_nets_tile_and_match_raster(seed, width, depth, extent):
    model = mlp((2, *[width] * depth, 2), seed=seed)
    part = regions_in_plane(model, torch.zeros(2), E1, E2, extent)
    check_tiling(part, model)
    check_affine(model, part, seed)
    check_codes_match_raster(model, part, n=60)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.act = nn.LeakyReLU(0.2)
        self.prelu = nn.PReLU(3)
        self.head = nn.Linear(3 * 2 * 2 * 2, 3)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        h = h + self.prelu(self.conv2(h))
        a = self.pool(h)
        b = self.act(self.avg(h))
        h = torch.cat([a, b], dim=1)
        return self.head(h.view(h.size(0), -1).relu())


def test_conv_residual_maxpool_network():
    torch.manual_seed(2)
    model = Residual()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.randn(3, 1, 4, 4)
    plane = plane_through(x[0], x[1], x[2])
    part = regions_in_plane(model, plane.origin, plane.u, plane.v, plane.extent / 3)
    assert part.n_regions > 300
    check_tiling(part)
    check_affine(model, part)
    check_raster_bijection(model, part, n=80)
    assert "pool" in part.layer_names and part.layer_kinds[part.layer_names.index("pool")] == (
        "argmax"
    )


def test_two_hinge_activations():
    model = mlp((2, 8, 8, 2), activation=lambda: nn.Hardtanh(-0.5, 0.7), seed=4)
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 2.0)
    check_tiling(part)
    check_affine(model, part)
    check_codes_match_raster(model, part, n=80)
    relu6 = mlp((2, 6, 6, 1), activation=nn.ReLU6, seed=7)
    part = regions_in_plane(relu6, torch.zeros(2), E1 * 8, E2 * 8, 2.0)
    check_tiling(part)
    check_affine(relu6, part)


def _segments_cross(p, q, segments):
    """[N] whether segment p→q crosses any of ``segments [S, 2, 2]`` (proper or touching)."""

    def orient(a, b, c):
        return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (
            c[..., 0] - a[..., 0]
        )

    a, b = segments[None, :, 0], segments[None, :, 1]
    p, q = p[:, None], q[:, None]
    d1, d2 = orient(a, b, p), orient(a, b, q)
    d3, d4 = orient(p, q, a), orient(p, q, b)
    return ((d1 * d2 <= 0) & (d3 * d4 <= 0)).any(axis=1)


@pytest.mark.parametrize("n_out", [1, 3])
def test_decision_boundary_against_raster(n_out):
    model = mlp((2, 10, 10, n_out), seed=11)
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 6.0)
    n = 60
    ticks = (np.arange(n) + 0.5) / n * 12 - 6
    grid = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1)
    with torch.no_grad():
        out = model.double()(part.to_input(grid.reshape(-1, 2))).numpy()
    label = (out[:, 0] > 0) if n_out == 1 else out.argmax(axis=1)
    label = label.reshape(n, n)
    assert len(np.unique(label)) > 1, "the test needs a slice with a decision boundary"
    assert len(part.decision_boundary) > 0
    # Points on each segment tie (the top two logits, or the single logit at 0).
    mids = part.decision_boundary.mean(axis=1)
    with torch.no_grad():
        at = model.double()(part.to_input(mids)).numpy()
    if n_out == 1:
        np.testing.assert_allclose(at[:, 0], 0, atol=1e-9)
    else:
        top = np.sort(at, axis=1)
        np.testing.assert_allclose(top[:, -1], top[:, -2], atol=1e-9)
    # Wherever neighbouring raster points are classified differently, a segment lies between.
    for p, q, differ in (
        (grid[:-1], grid[1:], label[:-1] != label[1:]),
        (grid[:, :-1], grid[:, 1:], label[:, :-1] != label[:, 1:]),
    ):
        assert _segments_cross(p[differ], q[differ], part.decision_boundary).all()


def test_plane_through_three_points():
    x = torch.randn(3, 5)
    plane = plane_through(x[0], x[1], x[2])
    back = (
        plane.origin
        + torch.tensor(plane.anchors[:, :1]) * plane.u
        + torch.tensor(plane.anchors[:, 1:]) * plane.v
    )
    torch.testing.assert_close(back, x.double(), atol=1e-12, rtol=0)
    assert float((plane.u * plane.v).sum()) == pytest.approx(0, abs=1e-12)
    assert plane.extent > np.abs(plane.anchors).max()


def test_bad_input():
    model = mlp((2, 4, 1))
    with pytest.raises(SplinescopeError, match="parallel"):
        regions_in_plane(model, torch.zeros(2), E1, 2 * E1, 1.0)
    with pytest.raises(SplinescopeError, match="extent"):
        regions_in_plane(model, torch.zeros(2), E1, E2, 0.0)
    with pytest.raises(SplinescopeError, match="extent"):
        regions_in_plane(model, torch.zeros(2), E1, E2, float("nan"))
    with pytest.raises(SplinescopeError, match="zero vector"):
        regions_in_plane(model, torch.zeros(2), torch.zeros(2), E2, 1.0)
    with pytest.raises(SplinescopeError, match="shape"):
        regions_in_plane(model, torch.zeros(3), torch.ones(3), torch.arange(3.0), 1.0)
    with pytest.raises(SplinescopeError, match="u: shape"):
        regions_in_plane(model, torch.zeros(2), torch.ones(3), E2, 1.0)
    smooth = nn.Sequential(nn.Linear(2, 4), nn.GELU(), nn.Linear(4, 4), nn.LayerNorm(4))
    with pytest.raises(SplinescopeError, match=r"'1' \(nn.GELU.*'3' \(nn.LayerNorm"):
        regions_in_plane(smooth, torch.zeros(2), E1, E2, 1.0)
    with pytest.raises(SplinescopeError, match="collinear"):
        plane_through(torch.zeros(2), E1, 2 * E1)


@pytest.mark.parametrize("width", [1e-6, 5e-8, 1e-9, 2e-10])
def test_thin_slivers_are_found(width):
    """Two nearly coincident lines bound a strip far thinner than any raster pixel; it is a
    region of its own with the right area."""
    layer = nn.Linear(2, 2, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.3], [1.0, 0.3]], dtype=torch.float64))
        layer.bias.copy_(torch.tensor([-0.25, -0.25 - width], dtype=torch.float64))
    model = nn.Sequential(layer, nn.ReLU())
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 1.0)
    assert part.n_regions == 3
    thin = np.sort(part.areas)[0]
    # The strip between the parallel lines, width / |(1, 0.3)| wide, crosses the square at t.
    expected = width / np.hypot(1, 0.3) * 2 * np.hypot(1, 0.3)
    assert thin == pytest.approx(expected, rel=1e-6)
    check_tiling(part)


@pytest.mark.slow
def test_deep_mlp_against_fine_raster():
    model = mlp((2, 32, 32, 32, 1), seed=21)
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 3.0)
    check_tiling(part, model)
    check_affine(model, part)
    pts, codes = raster_codes(model, part, 500)
    region = part.region_of_codes(codes)
    assert (region >= 0).all()
    assert part.n_regions >= len(np.unique(codes, axis=0))


def test_deeper_units_along_existing_edges_and_through_vertices():
    """Layer 2 copies layer 1 (identity weights: its lines run along existing edges, and on
    the inactive side the copies are identically 0) and adds integer combinations of the grid
    units whose lines pass exactly through grid vertices."""
    ks = (-1.0, 0.0, 1.0)
    first = grid_net(ks)[0]
    second = nn.Linear(6, 9)
    with torch.no_grad():
        weight = torch.zeros(9, 6)
        weight[:6] = torch.eye(6)
        weight[6] = torch.tensor([1.0, 0, 0, -1.0, 0, 0])  # s+1 − (t+1) on the active side
        weight[7] = torch.tensor([0, 1.0, 0, 0, -1.0, 0])  # through (0, 0), (1, 1), ...
        weight[8] = torch.tensor([0, 0, 1.0, 0, 0, 1.0])
        second.weight.copy_(weight)
        second.bias.copy_(torch.tensor([0.0] * 6 + [0.0, 0.0, -0.5]))
    model = nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), nn.Linear(9, 2))
    part = regions_in_plane(model, torch.zeros(2), E1, E2, 2.0)
    check_tiling(part, model)
    check_affine(model, part)
    check_codes_match_raster(model, part, n=160)
    assert part.layer_region_counts[0] == 16
