"""Exact activation regions of a piecewise-linear network along a segment of input space.

The segment is ``x(t) = a + t·(b − a)``, t ∈ [0, 1]. Each layer splits the current intervals
at the zero-crossings of its units, one unit at a time (each interval carries its own affine
map in t). One tolerance decides everything, and no length threshold decides whether a piece
exists. The *vertex tolerance*: a unit ``z = c0 + c1·t`` with ``|z| <= tol = rtol·(|c0| + |c1|)``
at an interval's end is zero there; a unit splits an interval if and only if it is above
``tol`` at one end and below ``−tol`` at the other (the signed vertex test); max-pool windows
split at the crossings of their positions' differences the same way.

What it resolves: a split-off piece is longer than ``tol / |c1| >= rtol`` in t, so every piece
longer than ``rtol · (1 + |c0/c1|)`` is kept (measured with the default ``rtol = 1e-10``: two
units crossing at t = 0.5 with ``c1 = 1`` give their own piece from 1.5e-10 apart on). What it
cannot resolve: a piece shorter than that stays part of its neighbour, and a unit within
``tol`` of zero along a whole interval has state 0 there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry._engine import Affine, as_sample, code_bits, propagate_input, trace
from splinescope.geometry.partition import Partition, check_rtol


def _crosses(f0: np.ndarray, f1: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """The signed vertex test: strictly beyond ``tol`` on opposite sides at the two ends."""
    return ((f0 > tol) & (f1 < -tol)) | ((f0 < -tol) & (f1 > tol))


class SegmentDomain:
    """Intervals ``[t0, t1]`` of [0, 1], kept in increasing order."""

    def __init__(self, rtol: float) -> None:
        self.t0 = np.array([0.0])
        self.t1 = np.array([1.0])
        self.rtol = rtol

    @property
    def size(self) -> int:
        return len(self.t0)

    def _states(self, c0, c1, tol, origin) -> np.ndarray:
        mid = 0.5 * (self.t0 + self.t1)[:, None]
        a0, a1, t = c0[origin], c1[origin], tol[origin]
        value = a0 + mid * a1
        states = np.sign(value).astype(np.int8)
        rows, cols = np.nonzero(np.abs(value) <= 1e3 * t)
        if len(rows):
            ends = np.stack(
                [
                    a0[rows, cols] + self.t0[rows] * a1[rows, cols],
                    a0[rows, cols] + self.t1[rows] * a1[rows, cols],
                ],
                axis=1,
            )
            extreme = np.take_along_axis(ends, np.abs(ends).argmax(axis=1)[:, None], axis=1)[:, 0]
            states[rows, cols] = np.where(np.abs(extreme) > t[rows, cols], np.sign(extreme), 0)
        return states

    def _cut(self, c0: np.ndarray, c1: np.ndarray, tol: np.ndarray) -> np.ndarray:
        """Split the intervals by each unit (column) in turn where the signed vertex test holds
        at the current ends; returns the origin of each new interval (sorted by t)."""
        t0, t1 = self.t0, self.t1
        crossed = _crosses(c0 + t0[:, None] * c1, c0 + t1[:, None] * c1, tol)
        origin = np.arange(self.size)
        starts, ends = [t0], [t1]
        for unit in np.nonzero(crossed.any(axis=0))[0]:
            t0, t1 = np.concatenate(starts), np.concatenate(ends)
            starts, ends = [t0], [t1]
            rows = np.nonzero(crossed[origin, unit])[0]
            o = origin[rows]
            a0, a1, tt = c0[o, unit], c1[o, unit], tol[o, unit]
            f0, f1 = a0 + t0[rows] * a1, a0 + t1[rows] * a1
            split = _crosses(f0, f1, tt)
            rows, f0, f1 = rows[split], f0[split], f1[split]
            where = t0[rows] + f0 / (f0 - f1) * (t1[rows] - t0[rows])
            starts.append(where)
            ends.append(t1[rows].copy())
            t1[rows] = where
            origin = np.concatenate([origin, origin[rows]])
        t0, t1 = np.concatenate(starts), np.concatenate(ends)
        order = np.argsort(t0, kind="stable")
        self.t0, self.t1 = t0[order], t1[order]
        if not (self.t1 > self.t0).all():
            raise SplinescopeError(
                f"exact segment: a split produced an empty interval (rtol={self.rtol})"
            )
        return origin[order]

    def split(self, z: torch.Tensor, layer: str) -> tuple[np.ndarray, np.ndarray]:
        coef = z.detach().cpu().numpy()
        c0, c1 = coef[:, 0], coef[:, 1]
        tol = self.rtol * (np.abs(c0) + np.abs(c1))
        origin = self._cut(c0, c1, tol)
        return origin, self._states(c0, c1, tol, origin)

    def split_max(
        self, z: torch.Tensor, valid: np.ndarray, layer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        coef = z.detach().cpu().numpy()  # [P, 2, W, K]
        p, _, w, k = coef.shape
        i, j = np.triu_indices(k, 1)
        pair_ok = valid[:, i] & valid[:, j]  # [W, pairs]: padding positions never compete
        diff = (coef[:, :, :, i] - coef[:, :, :, j])[:, :, pair_ok]  # [P, 2, n_pairs]
        scale = np.abs(coef[:, 0]) + np.abs(coef[:, 1])
        tol = self.rtol * 2 * np.where(valid[None], scale, 0).max(axis=2)  # [P, W]
        pair_window = np.nonzero(pair_ok)[0]
        origin = self._cut(diff[:, 0], diff[:, 1], tol[:, pair_window])
        winners = self._winners(coef[origin], valid, tol[origin])
        # Neighbours from one interval with the same winners everywhere are one cell.
        same = np.zeros(len(origin), dtype=bool)
        same[1:] = (origin[1:] == origin[:-1]) & (winners[1:] == winners[:-1]).all(axis=1)
        first = ~same
        group = np.cumsum(first) - 1
        t1 = np.zeros(int(first.sum()))
        np.maximum.at(t1, group, self.t1)
        self.t0, self.t1 = self.t0[first], t1
        return origin[first], winners[first]

    def _winners(self, coef: np.ndarray, valid: np.ndarray, tol: np.ndarray) -> np.ndarray:
        """``[P, W]`` winning position at each interval's midpoint: the lowest position within
        ``tol`` of the window's maximum (ties go to the lower position, as in the plane)."""
        mid = 0.5 * (self.t0 + self.t1)
        values = coef[:, 0] + mid[:, None, None] * coef[:, 1]
        values = np.where(valid[None], values, -np.inf)
        best = values.max(axis=2, keepdims=True)
        return (values >= best - tol[..., None]).argmax(axis=2)


@dataclass(frozen=True, kw_only=True)
class SegmentPartition(Partition):
    """The activation regions of a model along ``x(t) = a + t·(b − a)``, t ∈ [0, 1] (codes,
    layout, affine maps, per-layer counts, ``rtol`` and ``skipped`` as in
    :class:`splinescope.geometry.partition.Partition`; here ``affine`` is ``[R, 2, n_outputs]``,
    output = ``affine[r, 0] + t·affine[r, 1]``).

    Attributes:
        a, b: the segment's ends (float64, input-shaped).
        breakpoints: float64 ``[R − 1]`` increasing t where the activation pattern changes.
        starts, ends: float64 ``[R]`` each piece's interval.
        layer_crossings: int64 ``[L]``: unit sign changes of each layer along the segment
            (a unit crossing zero at an existing breakpoint counts too).
    """

    a: torch.Tensor
    b: torch.Tensor
    breakpoints: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    layer_crossings: np.ndarray

    def piece_of(self, t: np.ndarray) -> np.ndarray:
        """Index of the piece containing each t (ties go to the later piece)."""
        return np.searchsorted(self.breakpoints, np.asarray(t), side="right")

    def evaluate(self, t: np.ndarray) -> np.ndarray:
        """``[N, n_outputs]`` outputs at t by the pieces' affine maps."""
        t = np.asarray(t, dtype=np.float64)
        a = self.affine[self.piece_of(t)]
        return a[:, 0] + t[:, None] * a[:, 1]


def regions_on_segment(
    model: nn.Module,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    rtol: float = 1e-10,
) -> SegmentPartition:
    """Exact activation regions of ``model`` along the segment from ``a`` to ``b``.

    Args:
        model: a piecewise-linear network (see :func:`splinescope.geometry.affine.trace`).
        a, b: inputs ``[*input_shape]`` (no batch dimension), different points.
        rtol: the vertex tolerance, relative: a unit ``c0 + c1·t`` is zero at an interval's end
            when within ``rtol · (|c0| + |c1|)`` of it (see the module docstring for what it
            resolves); in [1e-15, 1e-3].

    Returns:
        :class:`SegmentPartition` with breakpoints, codes, affine pieces and per-layer counts.
    """
    start = as_sample(a, "a")
    stop = as_sample(b, "b")
    if start.shape != stop.shape:
        raise SplinescopeError(
            f"b: shape {tuple(stop.shape)} differs from a's shape {tuple(start.shape)}"
        )
    if torch.equal(start, stop):
        raise SplinescopeError("a, b: identical points give an empty segment")
    rtol = check_rtol(rtol)
    gm = trace(model)
    domain = SegmentDomain(rtol)
    coef = torch.stack([start, stop - start])[None]
    result = propagate_input(
        gm, domain, Affine(coef), model=model, argument="a", shape=tuple(start.shape)
    )
    bits = code_bits(result.records, result.states, domain.size)
    crossings = [int((state[1:] != state[:-1]).sum()) for state in result.states]
    return SegmentPartition(
        a=start,
        b=stop,
        breakpoints=domain.t0[1:].copy(),
        starts=domain.t0.copy(),
        ends=domain.t1.copy(),
        codes=np.packbits(bits, axis=1),
        n_bits=bits.shape[1],
        layer_names=tuple(r.name for r in result.records),
        layer_kinds=tuple(r.kind for r in result.records),
        layer_bits=tuple(r.bits for r in result.records),
        affine=result.output.coef.reshape(domain.size, 2, -1).numpy(),
        layer_crossings=np.array(crossings, dtype=np.int64),
        layer_region_counts=np.array(result.layer_sizes, dtype=np.int64),
        rtol=rtol,
        skipped=tuple(result.skipped),
    )
