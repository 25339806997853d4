"""Exact activation regions of a piecewise-linear network along a segment of input space.

The segment is ``x(t) = a + t·(b − a)``, t ∈ [0, 1]. Each layer splits the current intervals
at the zero-crossings of its units (each interval carries its own affine map in t), so the
result is exact up to one stated tolerance: a unit value with
``|z| <= rtol · (|z0| + |z1|)`` at an interval's end counts as zero there, and crossings closer
than ``ttol`` (in t) to each other or to an interval's ends are merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.affine import Affine, as_sample, code_bits, propagate, trace


class SegmentDomain:
    """Intervals ``[t0, t1]`` of [0, 1], kept in increasing order."""

    def __init__(self, rtol: float, ttol: float) -> None:
        self.t0 = np.array([0.0])
        self.t1 = np.array([1.0])
        self.rtol = rtol
        self.ttol = ttol

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
        """Split every interval at its units' crossings; returns the origin of each new one."""
        f0 = c0 + self.t0[:, None] * c1
        f1 = c0 + self.t1[:, None] * c1
        crossing = ((f0 > tol) & (f1 < -tol)) | ((f0 < -tol) & (f1 > tol))
        with np.errstate(divide="ignore", invalid="ignore"):
            where = self.t0[:, None] + f0 / (f0 - f1) * (self.t1 - self.t0)[:, None]
        where = np.where(crossing, where, np.inf)
        where.sort(axis=1)
        t0, t1 = self.t0[:, None], self.t1[:, None]
        previous = np.concatenate([t0, where[:, :-1]], axis=1)
        with np.errstate(invalid="ignore"):
            keep = np.isfinite(where) & (where - previous > self.ttol) & (t1 - where > self.ttol)
        n_new = keep.sum(axis=1)
        origin = np.repeat(np.arange(self.size), n_new + 1)
        starts = np.concatenate([t0, np.where(keep, where, np.nan)], axis=1)
        ends = np.concatenate([np.where(keep, where, np.nan), t1], axis=1)
        # Compact each row's kept breakpoints: starts are t0 then the cuts; ends the cuts then t1.
        s = starts[~np.isnan(starts)]
        e = ends[~np.isnan(ends)]
        self.t0, self.t1 = s, e
        return origin

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
        pair_ok = valid[:, i] & valid[:, j]  # [W, pairs]
        diff = (coef[:, :, :, i] - coef[:, :, :, j])[:, :, pair_ok]  # [P, 2, n_pairs]
        scale = np.abs(coef[:, 0]) + np.abs(coef[:, 1])
        tol = self.rtol * 2 * np.where(valid[None], scale, 0).max(axis=2)  # [P, W]
        pair_window = np.nonzero(pair_ok)[0]
        origin = self._cut(diff[:, 0], diff[:, 1], tol[:, pair_window])
        mid = 0.5 * (self.t0 + self.t1)
        c = coef[origin]
        values = c[:, 0] + mid[:, None, None] * c[:, 1]
        values = np.where(valid[None], values, -np.inf)
        winners = values.argmax(axis=2)
        # Merge neighbours that came from one interval and have the same winners everywhere.
        same = np.ones(len(origin), dtype=bool)
        same[0] = False
        same[1:] = (origin[1:] == origin[:-1]) & (winners[1:] == winners[:-1]).all(axis=1)
        first = ~same
        group = np.cumsum(first) - 1
        t0 = self.t0[first]
        t1 = np.zeros(len(t0))
        np.maximum.at(t1, group, self.t1)
        self.t0, self.t1 = t0, t1
        return origin[first], winners[first]


@dataclass(frozen=True)
class SegmentPartition:
    """The activation regions of a model along ``x(t) = a + t·(b − a)``, t ∈ [0, 1].

    Attributes:
        a, b: the segment's ends (float64, input-shaped).
        breakpoints: float64 ``[R − 1]`` increasing t where the activation pattern changes.
        starts, ends: float64 ``[R]`` each piece's interval.
        codes: uint8 ``[R, ceil(n_bits / 8)]`` packed activation codes (layout as in
            :class:`splinescope.geometry.plane.PlanePartition`).
        n_bits, layer_names, layer_kinds, layer_bits: the code's layout.
        affine: float64 ``[R, 2, n_outputs]``: output = ``affine[r, 0] + t·affine[r, 1]``.
        layer_crossings: int64 ``[L]``: unit sign changes of each layer along the segment
            (a unit crossing zero at an existing breakpoint counts too).
        layer_region_counts: int64 ``[L]``: pieces of the partition by layers 1..l.
        rtol, ttol: tolerances used (see module docstring).
    """

    a: torch.Tensor
    b: torch.Tensor
    breakpoints: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    codes: np.ndarray
    n_bits: int
    layer_names: tuple[str, ...]
    layer_kinds: tuple[str, ...]
    layer_bits: tuple[int, ...]
    affine: np.ndarray
    layer_crossings: np.ndarray
    layer_region_counts: np.ndarray
    rtol: float
    ttol: float

    @property
    def n_regions(self) -> int:
        """Number of pieces R."""
        return len(self.starts)

    def bits(self) -> np.ndarray:
        """bool ``[R, n_bits]``: unpacked codes."""
        return np.unpackbits(self.codes, axis=1, count=self.n_bits).astype(bool)

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
    ttol: float = 1e-13,
) -> SegmentPartition:
    """Exact activation regions of ``model`` along the segment from ``a`` to ``b``.

    Args:
        model: a piecewise-linear network (see :func:`splinescope.geometry.affine.trace`).
        a, b: inputs ``[*input_shape]`` (no batch dimension), different points.
        rtol: relative tolerance for "a unit is zero at an interval's end".
        ttol: breakpoints closer than this (in t ∈ [0, 1]) are merged.

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
    gm = trace(model)
    domain = SegmentDomain(rtol, ttol)
    coef = torch.stack([start, stop - start])[None]
    try:
        result = propagate(gm, domain, Affine(coef))
    except SplinescopeError:
        raise
    except Exception as error:
        raise SplinescopeError(
            f"a: shape {tuple(start.shape)} does not fit model {type(model).__name__}: "
            f"{type(error).__name__}: {error}"
        ) from error
    bits = code_bits(result.records, result.states)
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
        ttol=ttol,
    )
