"""Region migration, measured: where the region boundaries of a 2-D slice lie relative to the
decision boundary.

Humayun, Balestriero, Baraniuk ("Deep Networks Always Grok and Here is Why", ICML 2024) show
in pictures that late in training the linear regions leave the data and gather at the decision
boundary. In a plane (a :class:`~splinescope.geometry.plane.PlanePartition`) this is a density:
the length of region boundaries (edges of the partition's convex polygons) per unit area, as a
function of the distance to the decision boundary within the plane.

Exact parts: region edges and each region's affine logit map are the partition's own; the
decision boundary is recomputed exactly per region from those maps (the segments where the two
largest logits tie), so each segment knows the two classes it separates.

Discretised parts (stated): each edge is cut into pieces no longer than the step
``h = 2·extent / resolution`` and a piece is binned by the distance at its midpoint (distance
is 1-Lipschitz, so no point of a piece is farther than ``h/2`` from that value); the area per
bin is the midpoint rule on a ``resolution²`` grid of cells of side ``h``; distances to the
decision boundary are exact point-to-segment distances to candidate segments found through
samples spaced ``h/2`` along the boundary (error at most ``h/4``, always an over-estimate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from splinescope.errors import SplinescopeError
from splinescope.geometry import polygons
from splinescope.geometry.plane import PlanePartition

_MAX_CANDIDATES = 1 << 21  # (polygon, grid cell) pairs tested at once in point location


@dataclass(frozen=True)
class MigrationProfile:
    """Region-boundary density binned by distance to the decision boundary, in one plane.

    Lengths are in (s, t) units, areas in (s, t) units squared (input-space units when the
    plane's u and v are orthonormal, as :func:`plane_through` makes them).

    Attributes:
        bin_edges: float64 ``[B + 1]`` distance bin edges (signed or unsigned, see ``variant``).
        boundary_length: float64 ``[B]`` region-boundary length in each bin.
        area: float64 ``[B]`` area of the square at each bin's distances.
        density: float64 ``[B]`` ``boundary_length / area`` (NaN where the area is 0).
        band: half-width of the band around the decision boundary.
        band_length_share: share of all region-boundary length with ``|distance| <= band``.
        band_area_share: share of the square's area with ``|distance| <= band``.
        band_enrichment: ``band_length_share / band_area_share`` (1: no preference for the
            decision boundary; > 1: region boundaries gather there).
        total_length, total_area: over the whole square (area of located cells only).
        length_beyond, area_beyond: length and area outside ``bin_edges`` (0 with the default).
        signed_class: the class of the signed variant, or None (unsigned).
        variant: what was measured, in words.
        resolution, step: grid cells per side and ``h = 2·extent / resolution``.
        n_regions, n_decision_segments: sizes of the partition and of its decision boundary.
        n_unlocated: grid cells no region polygon contained (signed variant only; excluded).
    """

    bin_edges: np.ndarray
    boundary_length: np.ndarray
    area: np.ndarray
    density: np.ndarray
    band: float
    band_length_share: float
    band_area_share: float
    band_enrichment: float
    total_length: float
    total_area: float
    length_beyond: float
    area_beyond: float
    signed_class: int | None
    variant: str
    resolution: int
    step: float
    n_regions: int
    n_decision_segments: int
    n_unlocated: int

    @property
    def bin_centers(self) -> np.ndarray:
        """float64 ``[B]`` middle of each bin."""
        return 0.5 * (self.bin_edges[1:] + self.bin_edges[:-1])

    @property
    def mean_density(self) -> float:
        """Region-boundary length per unit area over the whole square."""
        return self.total_length / self.total_area if self.total_area > 0 else math.nan


def predicted_class(affine: np.ndarray, st: np.ndarray) -> np.ndarray:
    """int64 ``[N]`` class predicted at ``st [N, 2]`` by the affine maps ``affine [N, 3, C]``
    (argmax; for one output, 1 where it is > 0)."""
    out = affine[:, 0] + st[:, 0:1] * affine[:, 1] + st[:, 1:2] * affine[:, 2]
    if out.shape[1] == 1:
        return (out[:, 0] > 0).astype(np.int64)
    return out.argmax(axis=1)


def decision_segments(partition: PlanePartition) -> tuple[np.ndarray, np.ndarray]:
    """The decision boundary per region: ``segments [S, 2, 2]`` (s, t) and ``classes [S, 2]``,
    the two classes whose logits tie there (larger than all others); one output: classes 0, 1
    where it is 0."""
    verts, count, affine = partition.vertices, partition.n_vertices, partition.affine
    tol = 1e-12 * partition.extent
    n_out = affine.shape[2]
    if n_out == 1:
        seg, _ = polygons.line_in_polygons(verts, count, affine[:, :, 0], None, tol)
        return seg, np.tile([0, 1], (len(seg), 1))
    found, pairs = [np.zeros((0, 2, 2))], [np.zeros((0, 2), dtype=np.int64)]
    for i in range(n_out):
        for j in range(i + 1, n_out):
            g = affine[:, :, i] - affine[:, :, j]
            f = g[:, 0, None] + verts[..., 0] * g[:, 1, None] + verts[..., 1] * g[:, 2, None]
            rows = np.nonzero((f.max(axis=1) >= 0) & (f.min(axis=1) <= 0))[0]
            if not len(rows):
                continue
            others = [k for k in range(n_out) if k not in (i, j)]
            extra = None
            if others:
                extra = np.transpose(
                    affine[rows][:, :, i, None] - affine[rows][:, :, others], (0, 2, 1)
                )
            seg, _ = polygons.line_in_polygons(verts[rows], count[rows], g[rows], extra, tol)
            found.append(seg)
            pairs.append(np.tile([i, j], (len(seg), 1)))
    return np.concatenate(found), np.concatenate(pairs)


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance ``[...]`` from points ``p`` to segments ``a–b`` (all ``[..., 2]``)."""
    ab = b - a
    denom = (ab**2).sum(axis=-1)
    lam = np.where(denom > 0, ((p - a) * ab).sum(axis=-1) / np.where(denom > 0, denom, 1), 0)
    closest = a + np.clip(lam, 0.0, 1.0)[..., None] * ab
    return np.sqrt(((p - closest) ** 2).sum(axis=-1))


class _Distance:
    """Distance to a set of segments: the nearest of samples spaced ``spacing`` along them
    (k-d tree), then the exact distance to that sample's segment. The result lies between the
    true distance and the sample distance, so it over-estimates by at most ``spacing / 2``."""

    def __init__(self, segments: np.ndarray, spacing: float) -> None:
        length = np.sqrt(((segments[:, 1] - segments[:, 0]) ** 2).sum(axis=1))
        n = np.maximum(1, np.ceil(length / spacing).astype(np.int64)) + 1
        parent = np.repeat(np.arange(len(segments)), n)
        start = np.cumsum(n) - n
        lam = (np.arange(n.sum()) - np.repeat(start, n)) / np.repeat(n - 1, n)
        a, b = segments[parent, 0], segments[parent, 1]
        self.segments = segments
        self.parent = parent
        self.tree = cKDTree(a + lam[:, None] * (b - a), leafsize=32)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        out = np.empty(len(points))
        for i in range(0, len(points), 1 << 18):
            p = points[i : i + (1 << 18)]
            _, idx = self.tree.query(p)
            seg = self.segments[self.parent[idx]]  # [n, 2, 2]
            out[i : i + len(p)] = _point_segment_distance(p, seg[:, 0], seg[:, 1])
        return out


def _edge_pieces(partition: PlanePartition, step: float) -> tuple[np.ndarray, ...]:
    """Interior region edges cut into pieces no longer than ``step``: midpoints ``[K, 2]``,
    lengths ``[K]`` (halved: every interior edge is an edge of both its regions) and the
    region of each piece ``[K]``. Edges on the square's border are not region boundaries."""
    verts = partition.vertices
    nxt = np.roll(verts, -1, axis=1)
    a, b = verts.reshape(-1, 2), nxt.reshape(-1, 2)
    region = np.repeat(np.arange(len(verts)), verts.shape[1])
    length = np.sqrt(((b - a) ** 2).sum(axis=1))
    edge = partition.extent * (1 - 1e-9)
    border = np.zeros(len(a), dtype=bool)
    for axis in (0, 1):
        for side in (-1, 1):
            border |= (side * a[:, axis] >= edge) & (side * b[:, axis] >= edge)
    keep = (length > 1e-15 * partition.extent) & ~border
    a, b, region, length = a[keep], b[keep], region[keep], length[keep]
    n = np.ceil(length / step).astype(np.int64).clip(min=1)
    owner = np.repeat(np.arange(len(a)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    lam = (k + 0.5) / n[owner]
    mid = a[owner] + lam[:, None] * (b[owner] - a[owner])
    return mid, 0.5 * length[owner] / n[owner], region[owner]


def _locate(partition: PlanePartition, resolution: int, step: float) -> np.ndarray:
    """Region index ``[resolution²]`` of each grid cell centre (row-major in t, then s);
    −1 where no polygon contains it."""
    verts, e = partition.vertices, partition.extent
    lo = verts.min(axis=1)
    hi = verts.max(axis=1)
    first = np.ceil((lo + e) / step - 0.5).astype(np.int64).clip(0, resolution - 1)
    last = np.floor((hi + e) / step - 0.5).astype(np.int64).clip(0, resolution - 1)
    size = (last - first + 1).clip(min=0)
    n = size[:, 0] * size[:, 1]
    region = np.full(resolution * resolution, -1, dtype=np.int64)
    eps = 1e-12 * (2 * e) ** 2
    nxt = np.roll(verts, -1, axis=1)
    bounds = np.searchsorted(np.cumsum(n), np.arange(0, n.sum(), _MAX_CANDIDATES), side="right")
    for r0, r1 in zip(bounds, [*bounds[1:], len(n)], strict=True):
        rows = np.arange(r0, r1)
        rep = np.repeat(rows, n[rows])
        k = np.arange(len(rep)) - np.repeat(np.cumsum(n[rows]) - n[rows], n[rows])
        ix = first[rep, 0] + k % size[rep, 0]
        iy = first[rep, 1] + k // size[rep, 0]
        p = np.stack([(ix + 0.5) * step - e, (iy + 0.5) * step - e], axis=1)
        inside = np.ones(len(rep), dtype=bool)
        for j in range(verts.shape[1]):
            a, d = verts[rep, j], nxt[rep, j] - verts[rep, j]
            inside &= d[:, 0] * (p[:, 1] - a[:, 1]) - d[:, 1] * (p[:, 0] - a[:, 0]) >= -eps
        region[(iy * resolution + ix)[inside]] = rep[inside]
    return region


def _check(partition, bins, max_distance, band, signed_class, resolution) -> None:
    if not isinstance(partition, PlanePartition):
        raise SplinescopeError(
            f"partition: expected a PlanePartition (regions_in_plane), got {type(partition).__name__}"
        )
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
        raise SplinescopeError(f"resolution: must be an integer >= 8, got {resolution!r}")
    if isinstance(band, bool) or not isinstance(band, (int, float)) or not band > 0:
        raise SplinescopeError(f"band: must be a number > 0, got {band!r}")
    if max_distance is not None and not (
        isinstance(max_distance, (int, float)) and max_distance > 0
    ):
        raise SplinescopeError(f"max_distance: must be a number > 0 or None, got {max_distance!r}")
    if isinstance(bins, int) and not isinstance(bins, bool):
        if bins < 1:
            raise SplinescopeError(f"bins: must be >= 1, got {bins}")
    else:
        edges = np.asarray(bins, dtype=np.float64) if isinstance(bins, Sequence) else None
        if edges is None or edges.ndim != 1 or len(edges) < 2 or not (np.diff(edges) > 0).all():
            raise SplinescopeError(f"bins: an int or increasing bin edges (>= 2), got {bins!r}")
    n_classes = max(2, partition.affine.shape[2])
    if signed_class is not None and (
        isinstance(signed_class, bool)
        or not isinstance(signed_class, (int, np.integer))
        or not 0 <= signed_class < n_classes
    ):
        raise SplinescopeError(
            f"signed_class: must be None or a class in [0, {n_classes}), got {signed_class!r}"
        )


def migration_profile(
    partition: PlanePartition,
    *,
    band: float,
    bins: int | Sequence[float] = 16,
    max_distance: float | None = None,
    signed_class: int | None = None,
    resolution: int = 512,
) -> MigrationProfile:
    """Region-boundary length per unit area, binned by distance to the decision boundary.

    >>> part = regions_in_plane(model, plane.origin, plane.u, plane.v, plane.extent)
    >>> prof = migration_profile(part, band=0.1)      # doctest: +SKIP
    >>> prof.density, prof.band_length_share, prof.band_enrichment

    Args:
        partition: the exact partition of a plane (:func:`regions_in_plane`).
        band: half-width of the band ``|distance| <= band`` (in (s, t) units), > 0.
        bins: number of equal bins from 0 (or −max, signed) to the largest distance in the
            square (or ``max_distance``), or increasing bin edges.
        max_distance: upper end of the default bins.
        signed_class: None — unsigned distance to the whole decision boundary; a class c —
            distance to the boundary of the region where c is predicted, positive where c is
            predicted and negative elsewhere.
        resolution: grid cells per side for the area and the edge subdivision (see module).

    Returns:
        :class:`MigrationProfile`.

    Raises:
        SplinescopeError: bad arguments, or no decision boundary (of ``signed_class``) in the
            square — one class is predicted everywhere there, and distances are undefined.
    """
    _check(partition, bins, max_distance, band, signed_class, resolution)
    e = float(partition.extent)
    step = 2 * e / resolution
    segments, pairs = decision_segments(partition)
    if signed_class is not None:
        segments = segments[(pairs == signed_class).any(axis=1)]
    if not len(segments):
        which = "" if signed_class is None else f" of class {signed_class}"
        raise SplinescopeError(
            f"partition: no decision boundary{which} in the plane's square "
            f"(extent {e:g}); the distance to it is undefined"
        )
    distance = _Distance(segments, step / 2)
    mid, piece_length, piece_region = _edge_pieces(partition, step)
    centres = (np.arange(resolution) + 0.5) * step - e
    grid = np.stack(np.meshgrid(centres, centres, indexing="xy"), axis=-1).reshape(-1, 2)
    d_piece, d_cell = distance(mid), distance(grid)
    cell_area = np.full(len(grid), step * step)
    n_unlocated = 0
    if signed_class is not None:
        own = predicted_class(partition.affine[piece_region], mid) == signed_class
        d_piece = np.where(own, d_piece, -d_piece)
        cell_region = _locate(partition, resolution, step)
        located = cell_region >= 0
        n_unlocated = int((~located).sum())
        cell_area = np.where(located, cell_area, 0.0)
        own = np.zeros(len(grid), dtype=bool)
        own[located] = (
            predicted_class(partition.affine[cell_region[located]], grid[located]) == signed_class
        )
        d_cell = np.where(own, d_cell, -d_cell)
    if isinstance(bins, int):
        top = (
            float(max_distance)
            if max_distance is not None
            else float(max(np.abs(d_cell).max(), np.abs(d_piece).max(initial=0.0)) * (1 + 1e-9))
        )
        edges = np.linspace(-top if signed_class is not None else 0.0, top, bins + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    length, _ = np.histogram(d_piece, bins=edges, weights=piece_length)
    area, _ = np.histogram(d_cell, bins=edges, weights=cell_area)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(area > 0, length / np.where(area > 0, area, 1.0), np.nan)
    total_length, total_area = float(piece_length.sum()), float(cell_area.sum())
    band_length = float(piece_length[np.abs(d_piece) <= band].sum())
    band_area = float(cell_area[np.abs(d_cell) <= band].sum())
    length_share = band_length / total_length if total_length > 0 else math.nan
    area_share = band_area / total_area if total_area > 0 else math.nan
    if signed_class is None:
        variant = "unsigned distance to the decision boundary (all class pairs)"
    else:
        variant = (
            f"signed distance to the boundary of class {signed_class}'s decision region "
            "(positive where it is predicted)"
        )
    return MigrationProfile(
        bin_edges=edges,
        boundary_length=length,
        area=area,
        density=density,
        band=float(band),
        band_length_share=length_share,
        band_area_share=area_share,
        band_enrichment=length_share / area_share if area_share > 0 else math.nan,
        total_length=total_length,
        total_area=total_area,
        length_beyond=total_length - float(length.sum()),
        area_beyond=total_area - float(area.sum()),
        signed_class=None if signed_class is None else int(signed_class),
        variant=variant + "; region boundaries are the edges of the partition's polygons",
        resolution=resolution,
        step=step,
        n_regions=partition.n_regions,
        n_decision_segments=len(segments),
        n_unlocated=n_unlocated,
    )
