"""Pictures of exact partitions in a planar slice (matplotlib, no pyplot state).

In the style of the grokking paper's figures: region edges as thin dark lines, the decision
boundary in a contrasting colour on top, anchor samples marked; regions optionally coloured
by their area (log scale) or by the number of active units; and a region-density heat map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.affine import LocalAffineMap
from splinescope.geometry.plane import PlanePartition, plane_through, regions_in_plane

COLOR_BY = ("area", "active", "random", None)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def _face_values(partition: PlanePartition, color_by: str | None) -> np.ndarray | None:
    if color_by == "area":
        return np.maximum(partition.areas, np.finfo(np.float64).tiny)
    if color_by == "active":
        return _POPCOUNT[partition.codes].sum(axis=1).astype(np.float64)
    return None


def plot_partition(
    partition: PlanePartition,
    ax: Axes | None = None,
    *,
    color_by: str | None = "area",
    cmap: str = "viridis",
    edge_color: str = "#202020",
    edge_width: float = 0.25,
    boundary_color: str = "#e8301c",
    boundary_width: float = 1.6,
    anchor_labels: Sequence[str] | None = None,
    colorbar: bool = True,
    title: str | None = None,
) -> Axes:
    """Draw the regions of ``partition`` on ``ax`` (a new figure's axes when None).

    Args:
        color_by: ``"area"`` (log-scaled region area), ``"active"`` (number of active units
            in the region's code), ``"random"`` (a random pastel per region) or None (white).
        anchor_labels: names of the anchor points (default ``x0, x1, ...``).
        colorbar: add a colour bar for ``"area"`` / ``"active"``.

    Returns:
        The axes drawn on.
    """
    if color_by not in COLOR_BY:
        raise SplinescopeError(f"color_by: expected one of {COLOR_BY}, got {color_by!r}")
    if ax is None:
        ax = Figure(figsize=(6, 6)).add_subplot()
    polys = partition.polygons()
    values = _face_values(partition, color_by)
    collection = PolyCollection(polys, edgecolors=edge_color, linewidths=edge_width)
    if values is not None:
        if color_by == "area":  # the smallest 2 % saturate, so slivers do not flatten the scale
            low = max(values.min(), float(np.percentile(values, 2)))
            norm = LogNorm(low, max(values.max(), low * 1.0001), clip=True)
        else:
            norm = Normalize(values.min(), max(values.max(), values.min() + 1))
        collection.set_array(values)
        collection.set_cmap(cmap)
        collection.set_norm(norm)
        collection.set_alpha(0.85)
    elif color_by == "random":
        rng = np.random.default_rng(0)
        collection.set_facecolor(0.55 + 0.45 * rng.random((len(polys), 3)))
    else:
        collection.set_facecolor("white")
    ax.add_collection(collection)
    if len(partition.decision_boundary):
        ax.add_collection(
            LineCollection(
                partition.decision_boundary,
                colors=boundary_color,
                linewidths=boundary_width,
                label="decision boundary",
            )
        )
    if len(partition.anchors):
        labels = anchor_labels or [f"x{i}" for i in range(len(partition.anchors))]
        ax.scatter(
            partition.anchors[:, 0],
            partition.anchors[:, 1],
            s=60,
            c="white",
            edgecolors="black",
            linewidths=1.5,
            zorder=5,
        )
        for (s, t), label in zip(partition.anchors, labels, strict=False):
            ax.annotate(
                label, (s, t), xytext=(5, 5), textcoords="offset points", fontsize=10, zorder=6
            )
    e = partition.extent
    ax.set_xlim(-e, e)
    ax.set_ylim(-e, e)
    ax.set_aspect("equal")
    ax.set_xlabel("s")
    ax.set_ylabel("t")
    ax.set_title(title or f"{partition.n_regions} regions")
    if values is not None and colorbar and ax.figure is not None:
        bar = ax.figure.colorbar(collection, ax=ax, shrink=0.8)
        bar.set_label("region area" if color_by == "area" else "active units")
    return ax


def plot_region_density(
    partition: PlanePartition,
    ax: Axes | None = None,
    *,
    bins: int | None = None,
    cmap: str = "magma",
    title: str | None = None,
) -> Axes:
    """Heat map of region density: region centroids per unit area in a ``bins × bins`` grid
    over the square (log colour scale; empty cells blank). ``bins`` defaults to about
    ``sqrt(R / 16)`` (8 to 48) so that a typical cell holds several regions."""
    if bins is None:
        bins = int(np.clip(np.sqrt(partition.n_regions / 16), 8, 48))
    if bins < 1:
        raise SplinescopeError(f"bins: expected >= 1, got {bins}")
    if ax is None:
        ax = Figure(figsize=(6, 6)).add_subplot()
    e = partition.extent
    centre = partition.centroids()
    counts, xs, ys = np.histogram2d(centre[:, 0], centre[:, 1], bins=bins, range=[[-e, e], [-e, e]])
    density = counts / ((2 * e / bins) ** 2)
    shown = np.where(density > 0, density, np.nan)
    positive = density[density > 0]
    norm = LogNorm(positive.min(), max(positive.max(), positive.min() * 1.0001))
    image = ax.imshow(
        shown.T, origin="lower", extent=(-e, e, -e, e), cmap=cmap, norm=norm, aspect="equal"
    )
    if len(partition.decision_boundary):
        ax.add_collection(
            LineCollection(partition.decision_boundary, colors="#4fc3f7", linewidths=1.0)
        )
    if len(partition.anchors):
        ax.scatter(
            partition.anchors[:, 0], partition.anchors[:, 1], s=40, c="white", edgecolors="k"
        )
    ax.set_xlabel("s")
    ax.set_ylabel("t")
    ax.set_title(title or "regions per unit area")
    if ax.figure is not None:
        ax.figure.colorbar(image, ax=ax, shrink=0.8).set_label("regions / area")
    return ax


def plot_affine_rows(
    local: LocalAffineMap,
    *,
    labels: Sequence[str] | None = None,
    cmap: str = "RdBu_r",
    image_shape: tuple[int, ...] | None = None,
) -> Figure:
    """The "linear interpreter" view of a local affine map: each output's row of A drawn as
    an image of the input's shape (channels averaged), with a symmetric colour scale.

    Args:
        local: from :func:`splinescope.geometry.local_affine_map`.
        labels: one title per output (default ``output k``).
        image_shape: reshape rows to this ``(H, W)`` or ``(C, H, W)`` (e.g. 64 → (8, 8));
            default: the input shape (1-D inputs are drawn as one row of pixels).
    """
    rows = local.A.numpy()
    shape = tuple(image_shape) if image_shape is not None else local.input_shape
    if int(np.prod(shape)) != rows.shape[1]:
        raise SplinescopeError(
            f"image_shape: {shape} has {int(np.prod(shape))} pixels, rows have {rows.shape[1]}"
        )
    images = rows.reshape(len(rows), *shape)
    if images.ndim == 2:
        images = images[:, None, :]
    elif images.ndim == 4:
        images = images.mean(axis=1)
    elif images.ndim != 3:
        raise SplinescopeError(f"image_shape: expected 1 to 3 dimensions, got {shape}")
    n = len(images)
    cols = min(n, 5)
    figure = Figure(figsize=(2.4 * cols, 2.4 * ((n + cols - 1) // cols)), layout="constrained")
    axes = figure.subplots((n + cols - 1) // cols, cols, squeeze=False).ravel()
    bound = float(np.abs(images).max()) or 1.0
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k < n:
            ax.imshow(images[k], cmap=cmap, vmin=-bound, vmax=bound)
            ax.set_title(labels[k] if labels else f"output {k}", fontsize=9)
    return figure


def partition_figure(
    model: nn.Module,
    plane_points: torch.Tensor,
    *,
    margin: float = 1.5,
    extent: float | None = None,
    color_by: str | None = "area",
    density: bool = True,
    anchor_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """The exact partition of ``model`` in the plane through three inputs, as a figure.

    Args:
        model: a piecewise-linear network (see :func:`splinescope.geometry.regions_in_plane`).
        plane_points: ``[3, *input_shape]``, e.g. three training samples.
        margin: the square's half-width is ``margin ×`` the largest anchor coordinate.
        extent: overrides the half-width (in the plane's orthonormal coordinates).
        color_by: see :func:`plot_partition`.
        density: add the region-density heat map as a second panel.
        anchor_labels: names of the three points (e.g. their labels).
        title: figure title.

    Returns:
        A matplotlib ``Figure`` (save it with ``fig.savefig(path)``).
    """
    points = torch.as_tensor(plane_points)
    if points.dim() < 2 or points.shape[0] != 3:
        raise SplinescopeError(
            f"plane_points: expected [3, *input_shape], got {tuple(points.shape)}"
        )
    partition = anchored_partition(model, points, margin=margin, extent=extent)
    return partition_figure_of(
        partition, color_by=color_by, density=density, anchor_labels=anchor_labels, title=title
    )


def anchored_partition(
    model: nn.Module,
    plane_points: torch.Tensor,
    *,
    margin: float = 1.5,
    extent: float | None = None,
) -> PlanePartition:
    """The exact partition of the plane through ``plane_points [3, *input_shape]``, anchored."""
    plane = plane_through(plane_points[0], plane_points[1], plane_points[2], margin=margin)
    half = plane.extent if extent is None else extent
    return regions_in_plane(model, plane.origin, plane.u, plane.v, half, anchors=plane.anchors)


def partition_figure_of(
    partition: PlanePartition,
    *,
    color_by: str | None = "area",
    density: bool = True,
    anchor_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """A figure of a computed partition: regions (and the region-density panel)."""
    panels = 2 if density else 1
    figure = Figure(figsize=(6.5 * panels, 6), layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False)[0]
    plot_partition(partition, axes[0], color_by=color_by, anchor_labels=anchor_labels)
    if density:
        plot_region_density(partition, axes[1])
    if title:
        figure.suptitle(title)
    return figure
