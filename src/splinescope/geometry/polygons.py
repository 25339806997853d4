"""Vectorised float64 operations on batches of convex polygons (padded vertex arrays).

A batch is ``verts [B, M, 2]`` (counter-clockwise) with ``count [B]`` real vertices per row;
padding slots repeat vertex 0, so shoelace sums over all M slots are exact.
"""

from __future__ import annotations

import numpy as np


def areas(verts: np.ndarray) -> np.ndarray:
    """Signed areas ``[B]`` (positive for counter-clockwise rows) by the shoelace formula,
    in coordinates relative to vertex 0 (no cancellation for small polygons far from 0)."""
    local = verts - verts[:, :1]
    x, y = local[..., 0], local[..., 1]
    return 0.5 * (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)


def centroids(verts: np.ndarray) -> np.ndarray:
    """Area centroids ``[B, 2]``; the vertex mean for rows of (numerically) zero area."""
    base = verts[:, 0]
    local = verts - base[:, None]
    x, y = local[..., 0], local[..., 1]
    xn, yn = np.roll(x, -1, axis=1), np.roll(y, -1, axis=1)
    cross = x * yn - xn * y
    area = 0.5 * cross.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cx = ((x + xn) * cross).sum(axis=1) / (6.0 * area)
        cy = ((y + yn) * cross).sum(axis=1) / (6.0 * area)
    mean = local.mean(axis=1)
    bad = ~np.isfinite(cx) | ~np.isfinite(cy) | (np.abs(area) <= 0)
    cx = np.where(bad, mean[:, 0], cx)
    cy = np.where(bad, mean[:, 1], cy)
    return np.stack([cx, cy], axis=1) + base


def pad_to(verts: np.ndarray, width: int) -> np.ndarray:
    """Widen rows to ``width`` slots by repeating vertex 0."""
    if verts.shape[1] >= width:
        return verts
    extra = np.repeat(verts[:, :1], width - verts.shape[1], axis=1)
    return np.concatenate([verts, extra], axis=1)


def _compact(slots: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = keep.sum(axis=1)
    order = np.argsort(~keep, axis=1, kind="stable")
    width = max(int(count.max()) if len(count) else 1, 1)
    out = np.take_along_axis(slots, order[:, :width, None], axis=1)
    pad = np.arange(width)[None, :] >= count[:, None]
    out = np.where(pad[..., None], out[:, :1], out)
    return out, count


def cut(
    verts: np.ndarray, count: np.ndarray, f: np.ndarray, tol: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split each polygon by the zero line of an affine function sampled at its vertices.

    Args:
        verts: ``[B, M, 2]``; count: ``[B]``; f: ``[B, M]`` function values at the vertices;
        tol: ``[B]``: values with ``|f| <= tol`` count as on the line (kept by both sides).

    Returns:
        ``(positive verts, positive count, negative verts, negative count)``; a side with no
        vertex strictly on it has fewer than 3 vertices (zero area). The crossing point of an
        edge is computed once and shared by both sides, so the two pieces tile the polygon.
    """
    b, m = f.shape
    index = np.arange(m)[None, :]
    valid = index < count[:, None]
    nxt = np.where(index + 1 < count[:, None], index + 1, 0)
    f_next = np.take_along_axis(f, nxt, axis=1)
    v_next = np.take_along_axis(verts, nxt[..., None], axis=1)
    pos = (f > tol[:, None]) & valid
    neg = (f < -tol[:, None]) & valid
    pos_next = np.take_along_axis(pos, nxt, axis=1)
    neg_next = np.take_along_axis(neg, nxt, axis=1)
    crossing = (pos & neg_next) | (neg & pos_next)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(crossing, f / (f - f_next), 0.0)
    point = verts + lam[..., None] * (v_next - verts)
    slots = np.stack([verts, point], axis=2).reshape(b, 2 * m, 2)
    keep_pos = np.stack([valid & ~neg, crossing], axis=2).reshape(b, 2 * m)
    keep_neg = np.stack([valid & ~pos, crossing], axis=2).reshape(b, 2 * m)
    pv, pc = _compact(slots, keep_pos)
    nv, nc = _compact(slots, keep_neg)
    return pv, pc, nv, nc


def line_in_polygons(
    verts: np.ndarray, count: np.ndarray, g: np.ndarray, extra: np.ndarray | None, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """The part of the line ``g0 + g1·s + g2·t = 0`` inside each polygon and inside the
    half-planes ``e0 + e1·s + e2·t >= 0`` of ``extra``.

    Args:
        verts: ``[B, M, 2]`` counter-clockwise; count: ``[B]``; g: ``[B, 3]``;
        extra: ``[B, J, 3]`` or None; tol: minimum length of a kept segment.

    Returns:
        ``(segments [S, 2, 2], row [S])``: the segments longer than ``tol`` and the polygon of
        each. A row whose g is constant (``g1 = g2 = 0``) has no line and gives no segment;
        when g is identically 0 there, the caller decides what the tie means (the plane's
        decision boundary lists such regions in ``skipped``).
    """
    norm2 = g[:, 1] ** 2 + g[:, 2] ** 2
    ok = norm2 > 0
    safe = np.where(ok, norm2, 1.0)
    p0 = -g[:, 0:1] * g[:, 1:3] / safe[:, None]
    direction = np.stack([-g[:, 2], g[:, 1]], axis=1) / np.sqrt(safe)[:, None]
    m = verts.shape[1]
    index = np.arange(m)[None, :]
    nxt = np.where(index + 1 < count[:, None], index + 1, 0)
    edge = np.take_along_axis(verts, nxt[..., None], axis=1) - verts
    rel = p0[:, None, :] - verts
    # inside an edge: cross(edge, p - v) >= 0, with p = p0 + λ·direction  →  a + λ·c >= 0
    a = edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]
    c = edge[..., 0] * direction[:, None, 1] - edge[..., 1] * direction[:, None, 0]
    real = (index < count[:, None]) & ((edge**2).sum(axis=2) > 0)
    if extra is not None:
        a_extra = extra[..., 0] + extra[..., 1] * p0[:, None, 0] + extra[..., 2] * p0[:, None, 1]
        a = np.concatenate([a, a_extra], axis=1)
        c = np.concatenate(
            [c, extra[..., 1] * direction[:, None, 0] + extra[..., 2] * direction[:, None, 1]],
            axis=1,
        )
        real = np.concatenate([real, np.ones(extra.shape[:2], dtype=bool)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -a / c
    lower = np.where(real & (c > 0), bound, -np.inf).max(axis=1)
    upper = np.where(real & (c < 0), bound, np.inf).min(axis=1)
    parallel_out = (real & (c == 0) & (a < 0)).any(axis=1)
    keep = ok & ~parallel_out & np.isfinite(lower) & np.isfinite(upper) & (upper - lower > tol)
    rows = np.nonzero(keep)[0]
    start = p0[rows] + lower[rows, None] * direction[rows]
    end = p0[rows] + upper[rows, None] * direction[rows]
    return np.stack([start, end], axis=1), rows
