"""Partition pictures draw exactly the computed regions, boundary and anchors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.exact import local_affine_map, plane_through, regions_in_plane
from splinescope.report.partition_plot import (
    partition_figure,
    plot_affine_rows,
    plot_partition,
    plot_region_density,
)


def model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def partition():
    x = torch.tensor([[-1.0, -0.5], [1.0, -0.2], [0.2, 1.1]])
    plane = plane_through(x[0], x[1], x[2])
    return regions_in_plane(
        model(), plane.origin, plane.u, plane.v, plane.extent, anchors=plane.anchors
    )


@pytest.mark.parametrize("color_by", ["area", "active", "random", None])
def test_plot_partition_draws_every_region(color_by):
    part = partition()
    ax = plot_partition(part, color_by=color_by, anchor_labels=["a", "b", "c"])
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polys[0].get_paths()) == part.n_regions
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(part.decision_boundary) > 0
    assert len(lines[0].get_segments()) == len(part.decision_boundary)
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    assert ax.get_xlim() == pytest.approx((-part.extent, part.extent))
    if color_by == "area":
        np.testing.assert_allclose(polys[0].get_array(), part.areas)


def test_density_counts_regions_per_area():
    part = partition()
    ax = plot_region_density(part, bins=4)
    image = ax.images[0].get_array()
    cell = (2 * part.extent / 4) ** 2
    assert np.nansum(image.filled(0) if hasattr(image, "filled") else image) * cell == (
        pytest.approx(part.n_regions)
    )


def test_partition_figure_renders_png():
    x = torch.randn(3, 2)
    fig = partition_figure(model(), x, title="slice", anchor_labels=["0", "1", "2"])
    assert isinstance(fig, Figure) and len(fig.axes) >= 2
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    assert buffer.getvalue()[:4] == b"\x89PNG"
    single = partition_figure(model(), x, density=False, color_by=None)
    assert len(single.axes) == 1


def test_bad_input():
    with pytest.raises(SplinescopeError, match="plane_points"):
        partition_figure(model(), torch.randn(2, 2))
    with pytest.raises(SplinescopeError, match="color_by"):
        plot_partition(partition(), color_by="volume")
    with pytest.raises(SplinescopeError, match="collinear"):
        partition_figure(model(), torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))


def test_affine_rows_are_drawn_as_images():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    local = local_affine_map(net, torch.randn(1, 4, 4))
    fig = plot_affine_rows(local, labels=["a", "b", "c"])
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 3
    np.testing.assert_allclose(shown[1].images[0].get_array(), local.A[1].reshape(4, 4).numpy())
    flat = local_affine_map(net[1:], torch.randn(16))
    assert len([ax for ax in plot_affine_rows(flat, image_shape=(4, 4)).axes if ax.images]) == 3
    with pytest.raises(SplinescopeError, match="image_shape"):
        plot_affine_rows(flat, image_shape=(5, 5))
