"""Exact activation regions of a piecewise-linear network in a planar slice of input space.

The slice is ``{origin + s·u + t·v : s, t ∈ [−extent, extent]}``. Starting from the square,
each layer's units split the current convex polygons along their zero lines (vectorised
half-plane clipping in float64, one unit at a time over all polygons it cuts); every polygon
then carries its own affine map, which the next layer uses.

One tolerance decides everything, and no area threshold decides whether a region exists.
The *vertex tolerance*: a vertex where a unit's value ``z = z0 + z_s·s + z_t·t`` satisfies
``|z| <= tol = rtol · (|z0| + extent·(|z_s| + |z_t|))`` lies *on* that unit's line; it is shared
by both sides, so lines through vertices or along edges create no zero-area pieces. A unit
splits a piece if and only if some vertex has ``z > tol`` and another ``z < −tol`` (the signed
vertex test); a max-pool cell exists iff, for every rival position, some vertex lies strictly
(beyond the tolerance) on its side, or the two positions tie on the whole piece.

What it resolves: a piece is split off only with a vertex farther than ``tol / |∇z|`` from
the cutting line, and ``rtol · extent <= tol / |∇z| <= rtol · (|z0| / |∇z| + 1.42 · extent)``,
so a region is kept however small its area once it is wider than that across its bounding
lines. Measured with the default ``rtol = 1e-10``, ``extent = 1``: the smallest strip between
two parallel lines that is kept is 1.0e-10 wide for a line through the origin along an axis,
1.41e-10 for a diagonal one, 1.48e-10 for ``s + 0.3·t = 0.25`` and 2.3e-10 for
``0.6·s + 0.8·t = 0.9``; triangles of relative area 1e-18 (width ~1e-9) between three nearly
concurrent lines of three layers are found. What it cannot resolve: a region narrower than
that (all its vertices within ``tol`` of one of its lines) stays part of its neighbour, and a
unit whose line passes within ``tol`` of every vertex of a piece has state 0 there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry import polygons
from splinescope.geometry._engine import (
    Affine,
    UnitRecord,
    as_sample,
    code_bits,
    propagate_input,
    trace,
)
from splinescope.geometry.partition import Partition, check_rtol

_CHUNK = 1 << 22  # float64 elements per chunk of vertex evaluations (32 MB)


class PlaneDomain:
    """Convex polygons in (s, t) that the exact engine splits layer by layer."""

    def __init__(self, extent: float, rtol: float) -> None:
        e = float(extent)
        self.extent = e
        self.rtol = rtol
        self._verts = np.zeros((1024, 8, 2), dtype=np.float64)
        self._count = np.zeros(1024, dtype=np.int64)
        self._verts[0, :4] = [[-e, -e], [e, -e], [e, e], [-e, e]]
        self._verts[0, 4:] = self._verts[0, 0]
        self._count[0] = 4
        self._n = 1
        self.layer_cuts: list[int] = []

    # -- storage: a buffer with amortised growth; padding slots repeat vertex 0
    @property
    def size(self) -> int:
        return self._n

    @property
    def verts(self) -> np.ndarray:
        return self._verts[: self._n]

    @property
    def count(self) -> np.ndarray:
        return self._count[: self._n]

    def _widen(self, width: int) -> None:
        if width > self._verts.shape[1]:
            self._verts = polygons.pad_to(self._verts, width + 2)

    def _append(self, verts: np.ndarray, count: np.ndarray) -> None:
        self._widen(verts.shape[1])
        need = self._n + len(count)
        if need > len(self._count):
            capacity = max(need, 2 * len(self._count))
            grown = np.zeros((capacity, self._verts.shape[1], 2), dtype=np.float64)
            grown[: self._n] = self._verts[: self._n]
            self._verts = grown
            self._count = np.concatenate(
                [self._count[: self._n], np.zeros(capacity - self._n, dtype=np.int64)]
            )
        self._verts[self._n : need] = polygons.pad_to(verts, self._verts.shape[1])
        self._count[self._n : need] = count
        self._n = need

    def _replace(self, rows: np.ndarray, verts: np.ndarray, count: np.ndarray) -> None:
        self._widen(verts.shape[1])
        self._verts[rows] = polygons.pad_to(verts, self._verts.shape[1])
        self._count[rows] = count

    # -- which units may cut which pieces
    def _tolerance(self, coef: np.ndarray) -> np.ndarray:
        scale = np.abs(coef[:, 1]) + np.abs(coef[:, 2])
        scale *= self.extent
        scale += np.abs(coef[:, 0])
        return scale * self.rtol

    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Centres and half-sizes ``[P, 2]`` of the pieces' bounding boxes."""
        lo, hi = self.verts.min(axis=1), self.verts.max(axis=1)
        return 0.5 * (lo + hi), 0.5 * (hi - lo)

    def _near(self, coef, tol, centre, half, margin) -> tuple[np.ndarray, np.ndarray]:
        """Value of each unit at each box centre ``[P, U]`` and whether the unit's line may
        come within ``margin · tol`` of the piece (its range over the box straddles ±)."""
        value = coef[:, 0] + centre[:, 0:1] * coef[:, 1]
        value += centre[:, 1:2] * coef[:, 2]
        reach = half[:, 0:1] * np.abs(coef[:, 1])
        reach += half[:, 1:2] * np.abs(coef[:, 2])
        reach += margin * tol
        return value, np.abs(value) <= reach

    def _cut_mask(self, coef, tol, near) -> np.ndarray:
        """Exact "a vertex is above tol and another below −tol" for the near pairs only."""
        rows, cols = np.nonzero(near)
        cut = np.zeros(near.shape, dtype=bool)
        step = max(1, _CHUNK // max(1, self.verts.shape[1]))
        for start in range(0, len(rows), step):
            r, c = rows[start : start + step], cols[start : start + step]
            v = self.verts[r]
            f = coef[r, 0, c][:, None] + v[..., 0] * coef[r, 1, c][:, None]
            f += v[..., 1] * coef[r, 2, c][:, None]
            t = tol[r, c]
            cut[r, c] = (f.max(axis=1) > t) & (f.min(axis=1) < -t)
        return cut

    def _split_rows(
        self, rows: np.ndarray, f: np.ndarray, tol: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split pieces ``rows`` by one line each (values ``f [B, M]`` at their vertices) where
        the signed vertex test holds; returns (rows that were split, their new negative-side
        pieces' verts and counts). Positive sides replace the rows in place."""
        ok = (f > tol[:, None]).any(axis=1) & (f < -tol[:, None]).any(axis=1)
        if not ok.any():
            return rows[:0], self.verts[:0], self.count[:0]
        rows, f, tol = rows[ok], f[ok], tol[ok]
        pv, pc, nv, nc = polygons.cut(self.verts[rows], self.count[rows], f, tol)
        _check_pieces(pc, nc)
        self._replace(rows, pv, pc)
        return rows, nv, nc

    def _states(self, coef, tol, origin, sign, near) -> np.ndarray:
        """int8 sign of every unit on every piece. Far from a piece (``near`` false at its
        origin) the sign at the origin's box centre holds; near pairs are read at the piece's
        area centroid, or at its vertex of largest |value| when that is within 1e3·tol."""
        states = sign[origin]
        rows, cols = np.nonzero(near[origin])
        if not len(rows):
            return states
        centre = polygons.centroids(self.verts[np.unique(rows)])
        lookup = np.zeros(self.size, dtype=np.int64)
        lookup[np.unique(rows)] = np.arange(len(centre))
        o = origin[rows]
        cen = centre[lookup[rows]]
        value = coef[o, 0, cols] + cen[:, 0] * coef[o, 1, cols] + cen[:, 1] * coef[o, 2, cols]
        t = tol[o, cols]
        result = np.sign(value).astype(np.int8)
        unsure = np.abs(value) <= 1e3 * t
        if unsure.any():
            r, c, oo, tt = rows[unsure], cols[unsure], o[unsure], t[unsure]
            v = self.verts[r]
            f = coef[oo, 0, c][:, None] + v[..., 0] * coef[oo, 1, c][:, None]
            f += v[..., 1] * coef[oo, 2, c][:, None]
            extreme = np.take_along_axis(f, np.abs(f).argmax(axis=1)[:, None], axis=1)[:, 0]
            result[unsure] = np.where(np.abs(extreme) > tt, np.sign(extreme), 0)
        states[rows, cols] = result
        return states

    def split(self, z: torch.Tensor, layer: str) -> tuple[np.ndarray, np.ndarray]:
        coef = z.detach().cpu().numpy()
        tol = self._tolerance(coef)
        centre, half = self._boxes()
        value, near = self._near(coef, tol, centre, half, 1e3)
        sign = np.sign(value).astype(np.int8)
        cut = self._cut_mask(coef, tol, near)
        origin = np.arange(self.size)
        n_cuts = 0
        for unit in np.nonzero(cut.any(axis=0))[0]:
            rows = np.nonzero(cut[origin, unit])[0]
            if not len(rows):
                continue
            o = origin[rows]
            c = coef[o, :, unit]
            verts = self.verts[rows]
            f = c[:, 0, None] + verts[..., 0] * c[:, 1, None] + verts[..., 1] * c[:, 2, None]
            split, nv, nc = self._split_rows(rows, f, tol[o, unit])
            if len(split):
                n_cuts += len(split)
                self._append(nv, nc)
                origin = np.concatenate([origin, origin[split]])
        self.layer_cuts.append(n_cuts)
        return origin, self._states(coef, tol, origin, sign, near)

    def _values(self, coef: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``[B, M, U]`` unit values at the vertices of pieces ``rows``."""
        verts = self.verts[rows]
        return (
            coef[:, None, 0, :]
            + verts[:, :, 0, None] * coef[:, None, 1, :]
            + verts[:, :, 1, None] * coef[:, None, 2, :]
        )

    def _clip(self, verts, count, g, tol, strict):
        """Keep the part of each polygon where ``g >= 0``; returns (verts, count, exists).
        A part exists iff a vertex has ``g > tol`` (signed vertex test) or g is identically 0
        (within tol) on the polygon: such a tie belongs to the lower window position, so
        ``strict`` (the rival has the lower position) makes the part empty."""
        f = g[:, 0, None] + verts[..., 0] * g[:, 1, None] + verts[..., 1] * g[:, 2, None]
        flat = (np.abs(f) <= tol[:, None]).all(axis=1)
        exists = (f > tol[:, None]).any(axis=1) | (flat & (not strict))
        pv, pc, _, _ = polygons.cut(verts, count, f, tol)
        return pv, pc, exists

    def split_max(
        self, z: torch.Tensor, valid: np.ndarray, layer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        coef = z.detach().cpu().numpy()  # [P, 3, W, K]
        p, _, w, k = coef.shape
        origin = np.arange(p)
        winners = np.zeros((p, w), dtype=np.int64)
        scale = np.abs(coef[:, 0]) + self.extent * (np.abs(coef[:, 1]) + np.abs(coef[:, 2]))
        tol_w = self.rtol * 2 * np.where(valid[None], scale, 0).max(axis=2)  # [P, W]
        # Bounding-box test first: a position whose lowest value over the box beats every
        # other position's highest wins on the whole piece.
        centre, half = self._boxes()
        value = coef[:, 0] + centre[:, 0, None, None] * coef[:, 1]
        value += centre[:, 1, None, None] * coef[:, 2]
        reach = half[:, 0, None, None] * np.abs(coef[:, 1])
        reach += half[:, 1, None, None] * np.abs(coef[:, 2])
        low = np.where(valid[None], value - reach, -np.inf)
        high = np.where(valid[None], value + reach, -np.inf)
        lead = low.argmax(axis=2)
        lead_low = np.take_along_axis(low, lead[..., None], axis=2)[..., 0]
        np.put_along_axis(high, lead[..., None], -np.inf, axis=2)
        certain = lead_low - tol_w > high.max(axis=2)
        winners = np.where(certain, lead, 0)
        cut = np.zeros((p, w), dtype=bool)
        rows, cols = np.nonzero(~certain)
        step = max(1, _CHUNK // max(1, self.verts.shape[1] * k))
        for start in range(0, len(rows), step):
            r, c = rows[start : start + step], cols[start : start + step]
            v = self.verts[r]
            zc = coef[r, :, c]  # [n, 3, K]
            f = zc[:, None, 0] + v[..., 0, None] * zc[:, None, 1] + v[..., 1, None] * zc[:, None, 2]
            f = np.where(valid[c][:, None], f, -np.inf)  # [n, M, K]
            best = f.max(axis=2, keepdims=True)
            near = (f >= best - tol_w[r, c][:, None, None]) & valid[c][:, None]
            always = near.all(axis=1)  # [n, K]
            has = always.any(axis=1)
            cut[r, c] = ~has
            winners[r, c] = np.where(has, always.argmax(axis=1), 0)
        n_cuts = 0
        for window in np.nonzero(cut.any(axis=0))[0]:
            rows = np.nonzero(cut[origin, window])[0]
            if not len(rows):
                continue
            o = origin[rows]
            tol = tol_w[o, window]
            cells_v, cells_c, cells_row, cells_win = [], [], [], []
            for i in np.nonzero(valid[window])[0]:
                verts, count = self.verts[rows], self.count[rows].copy()
                alive = np.ones(len(rows), dtype=bool)
                for j in np.nonzero(valid[window])[0]:
                    if j == i:
                        continue
                    g = coef[o, :, window, i] - coef[o, :, window, j]
                    verts, count, exists = self._clip(verts, count, g, tol, strict=bool(j < i))
                    alive &= exists
                    count = np.where(alive, count, 0)
                idx = np.nonzero(alive)[0]
                _check_pieces(count[idx])
                cells_v.append(verts[idx])
                cells_c.append(count[idx])
                cells_row.append(rows[idx])
                cells_win.append(np.full(len(idx), i))
            width = max([self.verts.shape[1]] + [v.shape[1] for v in cells_v])
            verts = np.concatenate([polygons.pad_to(v, width) for v in cells_v])
            count = np.concatenate(cells_c)
            parent = np.concatenate(cells_row)
            win = np.concatenate(cells_win)
            # The first cell of each parent replaces it; the others are appended.
            order = np.argsort(parent, kind="stable")
            verts, count, parent, win = verts[order], count[order], parent[order], win[order]
            first = np.ones(len(parent), dtype=bool)
            first[1:] = parent[1:] != parent[:-1]
            lost = np.setdiff1d(rows, parent)
            if len(lost):
                raise SplinescopeError(
                    f"model: max-pool {layer!r}, window {window}: no position wins on "
                    f"{len(lost)} piece(s) within the vertex tolerance (rtol={self.rtol})"
                )
            self._replace(parent[first], verts[first], count[first])
            winners[parent[first], window] = win[first]
            rest = ~first
            n_cuts += int(rest.sum())
            self._append(verts[rest], count[rest])
            origin = np.concatenate([origin, origin[parent[rest]]])
            new_winners = winners[parent[rest]].copy()
            new_winners[:, window] = win[rest]
            winners = np.concatenate([winners, new_winners])
        self.layer_cuts.append(n_cuts)
        return origin, winners


def _check_pieces(*counts: np.ndarray) -> None:
    """Pieces made by the signed vertex test have >= 3 vertices; anything else is a bug."""
    for count in counts:
        if len(count) and int(count.min()) < 3:
            raise SplinescopeError("exact plane: a split produced a piece with < 3 vertices")


@dataclass(frozen=True, kw_only=True)
class PlanePartition(Partition):
    """The activation regions of a model in the square ``[−extent, extent]²`` of a plane: one
    convex polygon per realised activation pattern (codes, layout, affine maps, per-layer
    counts, ``rtol`` and ``skipped`` as in :class:`splinescope.geometry.partition.Partition`).

    Attributes:
        origin, u, v: the plane ``x(s, t) = origin + s·u + t·v`` (float64, input-shaped).
        extent: half-width of the square in (s, t) units.
        vertices: float64 ``[R, M, 2]`` counter-clockwise (s, t) vertices of each region's
            convex polygon; rows are padded by repeating vertex 0 (see ``n_vertices``).
        n_vertices: int64 ``[R]`` real vertices per region.
        affine: float64 ``[R, 3, n_outputs]``; on region r the flattened output is
            ``affine[r, 0] + s·affine[r, 1] + t·affine[r, 2]``.
        areas: float64 ``[R]`` region areas in (s, t) units (true input-space areas when u and
            v are orthonormal).
        decision_boundary: float64 ``[S, 2, 2]`` segments (s, t) where the predicted class
            changes (argmax of the outputs; sign of a single output). Regions on which the
            deciding outputs tie everywhere have no boundary line; they are listed in
            ``skipped`` under ``"decision_boundary"``.
        anchors: float64 ``[A, 2]`` (s, t) coordinates of anchor points (e.g. the three samples
            the plane passes through), possibly empty.
    """

    origin: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    extent: float
    vertices: np.ndarray
    n_vertices: np.ndarray
    areas: np.ndarray
    decision_boundary: np.ndarray
    anchors: np.ndarray

    def polygons(self) -> list[np.ndarray]:
        """Each region's ``[n_vertices, 2]`` polygon."""
        return [self.vertices[i, :n] for i, n in enumerate(self.n_vertices)]

    def centroids(self) -> np.ndarray:
        """``[R, 2]`` area centroids (interior points) of the regions."""
        return polygons.centroids(self.vertices)

    def to_input(self, st: np.ndarray) -> torch.Tensor:
        """``[N, 2]`` (s, t) coordinates → ``[N, *input_shape]`` float64 inputs."""
        st = torch.as_tensor(np.asarray(st), dtype=torch.float64)
        shape = (-1, *([1] * self.origin.dim()))
        return self.origin + st[:, 0].reshape(shape) * self.u + st[:, 1].reshape(shape) * self.v

    def region_of_codes(self, codes: np.ndarray) -> np.ndarray:
        """Region index of each packed code ``[N, n_bytes]`` (−1 where no region has it)."""
        lookup = {row.tobytes(): i for i, row in enumerate(self.codes)}
        return np.array([lookup.get(np.ascontiguousarray(r).tobytes(), -1) for r in codes])

    def evaluate(self, region: np.ndarray, st: np.ndarray) -> np.ndarray:
        """``[N, n_outputs]`` outputs at (s, t) points ``st [N, 2]`` by the affine maps of
        the given regions ``[N]``."""
        a = self.affine[region]
        return a[:, 0] + st[:, 0:1] * a[:, 1] + st[:, 1:2] * a[:, 2]


def _decision_boundary(
    verts: np.ndarray, count: np.ndarray, affine: np.ndarray
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Segments where the predicted class changes, and ``skipped`` entries for regions where
    the deciding outputs tie on the whole region (a 2-D tie has no boundary line)."""
    n_out = affine.shape[2]
    if n_out == 1:
        g = affine[:, :, 0]
        segments, _ = polygons.line_in_polygons(verts, count, g, None, 0.0)
        tied = np.nonzero((g == 0).all(axis=1))[0]
        return segments, _tie_entries(tied, "the output is identically 0")
    found, skipped = [], []
    centres = None
    for i in range(n_out):
        for j in range(i + 1, n_out):
            g = affine[:, :, i] - affine[:, :, j]
            others = [k for k in range(n_out) if k not in (i, j)]
            extra = affine[:, :, i, None] - affine[:, :, others] if others else None
            if extra is not None:
                extra = np.transpose(extra, (0, 2, 1))
            flat = np.nonzero((g == 0).all(axis=1))[0]
            if len(flat):
                centres = polygons.centroids(verts) if centres is None else centres
                skipped += _tie_entries(
                    _on_top(flat, centres, extra), f"outputs {i} and {j} tie everywhere"
                )
            # Only regions where the pair's line can meet the polygon matter.
            f = g[:, 0, None] + verts[..., 0] * g[:, 1, None] + verts[..., 1] * g[:, 2, None]
            rows = np.nonzero((f.max(axis=1) >= 0) & (f.min(axis=1) <= 0))[0]
            if not len(rows):
                continue
            segments, _ = polygons.line_in_polygons(
                verts[rows], count[rows], g[rows], None if extra is None else extra[rows], 0.0
            )
            found.append(segments)
    return (np.concatenate(found) if found else np.zeros((0, 2, 2))), skipped


def _on_top(rows: np.ndarray, centres: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
    """The regions among ``rows`` where the pair is not beaten by another output at the
    region's centroid (``extra [R, J, 3]``: the pair's output minus each other output)."""
    if extra is None:
        return rows
    c = centres[rows]
    e = extra[rows]
    margin = e[..., 0] + c[:, 0, None] * e[..., 1] + c[:, 1, None] * e[..., 2]
    return rows[(margin >= 0).all(axis=1)]


def _tie_entries(rows: np.ndarray, why: str) -> list[tuple[str, str]]:
    """One ``("decision_boundary", reason)`` entry naming the tied regions (if any)."""
    if not len(rows):
        return []
    shown = ", ".join(str(int(r)) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
    return [("decision_boundary", f"{why} on {len(rows)} region(s) [{shown}]: no boundary line")]


def _check_plane(origin, u, v, extent) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    origin = as_sample(origin, "origin")
    u = as_sample(u, "u")
    v = as_sample(v, "v")
    for name, value in (("u", u), ("v", v)):
        if value.shape != origin.shape:
            raise SplinescopeError(
                f"{name}: shape {tuple(value.shape)} differs from origin's {tuple(origin.shape)}"
            )
    nu, nv = float(u.norm()), float(v.norm())
    if nu == 0 or nv == 0:
        raise SplinescopeError(f"{'u' if nu == 0 else 'v'}: the zero vector spans no plane")
    gram = nu**2 * nv**2 - float((u * v).sum()) ** 2
    if gram <= 1e-12 * nu**2 * nv**2:
        raise SplinescopeError("u, v: parallel directions span no plane")
    try:
        extent = float(extent)
    except (TypeError, ValueError) as error:
        raise SplinescopeError(f"extent: expected a positive number, got {extent!r}") from error
    if not np.isfinite(extent) or extent <= 0:
        raise SplinescopeError(f"extent: expected a positive finite number, got {extent!r}")
    return origin, u, v, extent


def regions_in_plane(
    model: nn.Module,
    origin: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    extent: float,
    *,
    anchors: np.ndarray | None = None,
    rtol: float = 1e-10,
) -> PlanePartition:
    """Exact activation regions of ``model`` in ``{origin + s·u + t·v : |s|, |t| <= extent}``.

    Args:
        model: a piecewise-linear network (Linear, Conv, BatchNorm in eval, pooling, reshapes,
            residual additions, concatenations, ReLU-family activations); it is not modified.
        origin, u, v: one input each, shape ``[*input_shape]`` (no batch dimension).
        extent: half-width of the square, > 0.
        anchors: optional ``[A, 2]`` (s, t) points to carry along for plotting.
        rtol: the vertex tolerance, relative: a vertex lies on a unit's line when the unit's
            value there is within ``rtol · (|z0| + extent·(|z_s| + |z_t|))`` (see the module
            docstring for what it resolves); in [1e-15, 1e-3].

    Returns:
        :class:`PlanePartition`: one convex polygon per realised activation pattern of positive
        area, with codes, affine maps, areas, per-layer region counts and the decision boundary.
    """
    origin, u, v, extent = _check_plane(origin, u, v, extent)
    rtol = check_rtol(rtol)
    gm = trace(model)
    domain = PlaneDomain(extent, rtol)
    coef = torch.stack([origin, u, v])[None]
    result = propagate_input(
        gm, domain, Affine(coef), model=model, argument="origin", shape=tuple(origin.shape)
    )
    return _partition(result, domain, origin, u, v, extent, anchors, rtol)


def _partition(result, domain, origin, u, v, extent, anchors, rtol) -> PlanePartition:
    records: list[UnitRecord] = result.records
    bits = code_bits(records, result.states, domain.size)
    width = int(domain.count.max())
    verts = np.ascontiguousarray(domain.verts[:, :width])
    affine = result.output.coef.reshape(domain.size, 3, -1).numpy()
    areas = polygons.areas(verts)
    if not (areas > 0).all():
        raise SplinescopeError(
            f"exact plane: {int((areas <= 0).sum())} region(s) without positive area "
            f"(rtol={rtol} is too small for this model's float64 precision)"
        )
    boundary, ties = _decision_boundary(verts, domain.count, affine)
    return PlanePartition(
        origin=origin,
        u=u,
        v=v,
        extent=extent,
        vertices=verts,
        n_vertices=domain.count.copy(),
        codes=np.packbits(bits, axis=1),
        n_bits=bits.shape[1],
        layer_names=tuple(r.name for r in records),
        layer_kinds=tuple(r.kind for r in records),
        layer_bits=tuple(r.bits for r in records),
        affine=affine,
        areas=areas,
        layer_region_counts=np.array(result.layer_sizes, dtype=np.int64),
        decision_boundary=boundary,
        anchors=np.zeros((0, 2)) if anchors is None else np.asarray(anchors, dtype=np.float64),
        rtol=rtol,
        skipped=tuple(result.skipped) + tuple(ties),
    )


@dataclass(frozen=True)
class Plane:
    """A plane through three inputs: ``origin`` is their mean, ``u``/``v`` orthonormal, and
    ``anchors [3, 2]`` their (s, t) coordinates; ``extent`` leaves a margin around them."""

    origin: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    extent: float
    anchors: np.ndarray


def plane_through(
    x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, *, margin: float = 1.5
) -> Plane:
    """The plane through three inputs (e.g. three training samples).

    ``u`` is the unit vector along ``x1 − x0``; ``v`` is ``x2 − x0`` made orthogonal to ``u``
    and unit length; ``extent = margin · max |anchor coordinate|``.

    Raises:
        SplinescopeError: shapes differ, or the three points are (nearly) collinear.
    """
    a, b, c = (as_sample(x, name) for x, name in ((x0, "x0"), (x1, "x1"), (x2, "x2")))
    if not (a.shape == b.shape == c.shape):
        raise SplinescopeError(
            f"x0, x1, x2: shapes differ: {tuple(a.shape)}, {tuple(b.shape)}, {tuple(c.shape)}"
        )
    d1, d2 = b - a, c - a
    if float(d1.norm()) == 0:
        raise SplinescopeError("x0, x1: identical points span no plane")
    u = d1 / d1.norm()
    w = d2 - (d2 * u).sum() * u
    if float(w.norm()) <= 1e-9 * max(float(d2.norm()), 1e-300):
        raise SplinescopeError("x0, x1, x2: collinear points span no plane")
    v = w / w.norm()
    origin = (a + b + c) / 3
    anchors = np.array(
        [[float(((x - origin) * u).sum()), float(((x - origin) * v).sum())] for x in (a, b, c)]
    )
    if margin <= 1:
        raise SplinescopeError(f"margin: expected > 1, got {margin}")
    extent = float(margin * np.abs(anchors).max())
    return Plane(origin, u, v, extent, anchors)
