"""Migration profile against closed forms (parallel region boundaries) and a fine raster."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry import MigrationProfile, migration_profile, regions_in_plane

E2 = (torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64))
UNIT_V = torch.tensor([0.0, 1.0], dtype=torch.float64)


def _partition(model: nn.Module, extent: float):
    return regions_in_plane(model, E2[0], E2[1], UNIT_V, extent)


def _parallel_lines_model() -> nn.Sequential:
    """Region boundaries: the lines x_0 = 0.5, 1.0, 1.5, −0.6; decision boundary x_0 = 0
    (logits (x_0, 0): class 0 where x_0 > 0). The unit relu(x_0 + 3) never switches in [−2, 2]²."""
    model = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 2)).double()
    f64 = {"dtype": torch.float64}
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1, 0], [1, 0], [1, 0], [-1, 0], [1, 0]], **f64))
        model[0].bias.copy_(torch.tensor([-0.5, -1.0, -1.5, -0.6, 3.0], **f64))
        model[2].weight.copy_(torch.tensor([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0]], **f64))
        model[2].bias.copy_(torch.tensor([-3.0, 0.0], **f64))
    return model


def test_parallel_region_boundaries_at_known_distances_unsigned():
    part = _partition(_parallel_lines_model(), 2.0)
    edges = [0.0, 0.25, 0.75, 1.25, 1.75, 2.0]  # multiples of the step 4/512: exact areas
    prof = migration_profile(part, band=0.55, bins=edges, resolution=512)
    assert isinstance(prof, MigrationProfile)
    np.testing.assert_allclose(prof.boundary_length, [0, 8, 4, 4, 0], atol=1e-9)
    np.testing.assert_allclose(prof.area, 8 * np.diff(edges), rtol=1e-12)
    np.testing.assert_allclose(prof.density, [0, 2, 1, 1, 0], atol=1e-9)
    assert prof.total_length == pytest.approx(16.0) and prof.total_area == pytest.approx(16.0)
    assert prof.length_beyond == pytest.approx(0, abs=1e-9) and prof.n_unlocated == 0
    assert prof.band_length_share == pytest.approx(4 / 16)
    # |x_0| <= 0.55 is 1.1 wide; the grid rounds it to whole cells (0.55 / step = 70.4)
    assert prof.band_area_share == pytest.approx(1.1 * 4 / 16, abs=4 * prof.step / 16)
    assert prof.band_enrichment == pytest.approx(prof.band_length_share / prof.band_area_share)
    assert prof.mean_density == pytest.approx(1.0)
    assert prof.signed_class is None and "unsigned" in prof.variant


def test_parallel_region_boundaries_signed_by_class():
    part = _partition(_parallel_lines_model(), 2.0)
    edges = [-2.0, -1.25, -0.25, 0.25, 1.25, 2.0]
    zero = migration_profile(part, band=0.55, bins=edges, signed_class=0)
    one = migration_profile(part, band=0.55, bins=edges, signed_class=1)
    np.testing.assert_allclose(zero.boundary_length, [0, 4, 0, 8, 4], atol=1e-9)
    np.testing.assert_allclose(one.boundary_length, [4, 8, 0, 4, 0], atol=1e-9)
    np.testing.assert_allclose(zero.area, 4 * np.diff(edges), rtol=1e-12)
    np.testing.assert_allclose(one.area, zero.area[::-1], rtol=1e-12)
    assert zero.n_unlocated == one.n_unlocated == 0
    assert zero.band_length_share == pytest.approx(0.25) and "class 0" in zero.variant
    default = migration_profile(part, band=0.55, bins=4, signed_class=0)
    assert default.bin_edges[0] == pytest.approx(-default.bin_edges[-1])
    assert default.length_beyond == pytest.approx(0, abs=1e-9)


def _toy_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 3)
    ).double()


def _raster(model: nn.Sequential, extent: float, pixels: int):
    """Brute force on a pixel grid: region boundaries as differing activation codes between
    neighbouring pixels (4 directions, Crofton weights), the decision boundary as differing
    predictions between neighbours, distances from pixel positions to that boundary."""
    h = 2 * extent / pixels
    c = (np.arange(pixels) + 0.5) * h - extent
    s, t = np.meshgrid(c, c, indexing="xy")
    x = torch.from_numpy(np.stack([s.ravel(), t.ravel()], axis=1))
    bits = []
    with torch.no_grad():
        z = x
        for layer in model:
            z = layer(z)
            if isinstance(layer, nn.Linear) and layer is not model[-1]:
                bits.append((z > 0).numpy())
    code = np.concatenate(bits, axis=1).reshape(pixels, pixels, -1)
    pred = z.argmax(dim=1).numpy().reshape(pixels, pixels)
    xy = np.stack([s, t], axis=-1)
    marks, weights = [], []
    shifts = [((0, 1), h), ((1, 0), h), ((1, 1), h / math.sqrt(2)), ((1, -1), h / math.sqrt(2))]
    db = []
    for (di, dj), spacing in shifts:
        i0, i1 = slice(0, pixels - di), slice(di, pixels)
        j0 = slice(max(0, -dj), pixels - max(0, dj))
        j1 = slice(max(0, dj), pixels - max(0, -dj))
        differ = (code[i0, j0] != code[i1, j1]).any(axis=2)
        mid = 0.5 * (xy[i0, j0] + xy[i1, j1])
        marks.append(mid[differ])
        weights.append(np.full(int(differ.sum()), math.pi / 8 * spacing))
        if (di, dj) in ((0, 1), (1, 0)):
            db.append(mid[pred[i0, j0] != pred[i1, j1]])
    tree = cKDTree(np.concatenate(db))
    d_marks = tree.query(np.concatenate(marks))[0]
    d_pixels = tree.query(xy.reshape(-1, 2))[0]
    return d_marks, np.concatenate(weights), d_pixels, h * h


def _raster_signed(model: nn.Sequential, extent: float, pixels: int, cls: int):
    """Signed raster: distance to pixel pairs where 'class cls predicted' changes, positive
    where it is predicted; region-boundary marks signed by their first pixel."""
    h = 2 * extent / pixels
    c = (np.arange(pixels) + 0.5) * h - extent
    s, t = np.meshgrid(c, c, indexing="xy")
    xy = np.stack([s, t], axis=-1)
    x = torch.from_numpy(xy.reshape(-1, 2))
    with torch.no_grad():
        own = (model(x).argmax(dim=1) == cls).numpy().reshape(pixels, pixels)
        pre = model[0](x)
        code = [pre > 0]
        for layer in model[1:-1]:
            pre = layer(pre)
            if isinstance(layer, nn.Linear):
                code.append(pre > 0)
    code = torch.cat(code, dim=1).numpy().reshape(pixels, pixels, -1)
    db = [0.5 * (xy[:, :-1] + xy[:, 1:])[own[:, :-1] != own[:, 1:]]]
    db.append(0.5 * (xy[:-1] + xy[1:])[own[:-1] != own[1:]])
    tree = cKDTree(np.concatenate(db))
    sign = np.where(own, 1.0, -1.0)
    d_pixels = tree.query(xy.reshape(-1, 2))[0] * sign.ravel()
    marks, weights = [], []
    for axis in (1, 0):  # horizontal and vertical pairs (Crofton, 2 directions)
        a = code[:, :-1] if axis == 1 else code[:-1]
        b = code[:, 1:] if axis == 1 else code[1:]
        differ = (a != b).any(axis=2)
        first = (xy[:, :-1] if axis == 1 else xy[:-1])[differ]
        mid = first + 0.5 * h * np.array([1.0, 0.0] if axis == 1 else [0.0, 1.0])
        first_sign = (sign[:, :-1] if axis == 1 else sign[:-1])[differ]
        marks.append(tree.query(mid)[0] * first_sign)
        weights.append(np.full(int(differ.sum()), math.pi / 4 * h))
    return np.concatenate(marks), np.concatenate(weights), d_pixels, h * h


@pytest.mark.parametrize("seed", [0, 2])
def test_profile_agrees_with_a_fine_raster(seed):
    model, extent = _toy_net(seed), 2.0
    part = _partition(model, extent)
    prof = migration_profile(part, band=0.2, bins=6, resolution=512)
    d_marks, w, d_pixels, cell = _raster(model, extent, 1000)
    length, _ = np.histogram(d_marks, bins=prof.bin_edges, weights=w)
    area, _ = np.histogram(d_pixels, bins=prof.bin_edges)
    area = area * cell
    assert prof.total_length == pytest.approx(w.sum(), rel=0.03)
    np.testing.assert_allclose(prof.area, area, rtol=0.02, atol=0.01 * prof.total_area)
    np.testing.assert_allclose(
        prof.boundary_length, length, rtol=0.06, atol=0.01 * prof.total_length
    )
    band_share = w[d_marks <= 0.2].sum() / w.sum()
    assert prof.band_length_share == pytest.approx(band_share, abs=0.015)
    assert prof.band_area_share == pytest.approx((d_pixels <= 0.2).mean(), abs=0.01)


def test_signed_profile_agrees_with_a_fine_raster():
    model, extent, cls = _toy_net(0), 2.0, 1
    prof = migration_profile(_partition(model, extent), band=0.2, bins=8, signed_class=cls)
    assert prof.n_unlocated == 0
    d_marks, w, d_pixels, cell = _raster_signed(model, extent, 1000, cls)
    length, _ = np.histogram(d_marks, bins=prof.bin_edges, weights=w)
    area, _ = np.histogram(d_pixels, bins=prof.bin_edges)
    np.testing.assert_allclose(prof.area, area * cell, rtol=0.02, atol=0.01 * prof.total_area)
    # two raster directions only: Crofton is off by -21%..+11% for a single line direction
    np.testing.assert_allclose(
        prof.boundary_length, length, rtol=0.12, atol=0.02 * prof.total_length
    )


def test_bad_arguments_are_named():
    part = _partition(_parallel_lines_model(), 2.0)
    cases = [
        (lambda: migration_profile("plane", band=0.1), "partition: expected a PlanePartition"),
        (lambda: migration_profile(part, band=0), "band: must be a number > 0"),
        (lambda: migration_profile(part, band=0.1, bins=0), "bins: must be >= 1"),
        (lambda: migration_profile(part, band=0.1, bins=[1.0, 0.5]), "bins: an int or"),
        (lambda: migration_profile(part, band=0.1, resolution=4), "resolution: must be"),
        (lambda: migration_profile(part, band=0.1, signed_class=2), "signed_class: must be"),
        (lambda: migration_profile(part, band=0.1, max_distance=-1.0), "max_distance: must"),
    ]
    for call, message in cases:
        with pytest.raises(SplinescopeError) as info:
            call()
        assert message in str(info.value)


def test_a_plane_with_one_predicted_class_is_refused():
    model = _parallel_lines_model()
    with torch.no_grad():
        model[2].bias[1] = 10.0  # class 1 everywhere in [-2, 2]^2
    with pytest.raises(SplinescopeError, match="no decision boundary in the plane's square"):
        migration_profile(_partition(model, 2.0), band=0.1)
