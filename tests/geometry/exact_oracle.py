"""Exact-arithmetic oracle for the activation regions of small ``nn.Sequential`` networks.

Independent of the library: every float64 weight is converted exactly to an integer times a
power of two, plane vertices are homogeneous integer triples ``(w, x, y)`` (the point
``(x / w, y / w)``, ``w > 0``) and segment breakpoints are :class:`fractions.Fraction`, so
each sign test is exact. Polygons are clipped layer by layer, one unit at a time; a piece is
split only when the unit is strictly positive at one vertex and strictly negative at another,
so every piece has positive area and its pattern is constant on its interior.

Supported layers: ``Linear``, ``ReLU``, ``Unflatten`` to ``(C, L)``, ``MaxPool1d`` (no
padding, dilation 1, no ceil mode) and ``Flatten``. Codes follow the library's layout: one bit
per ReLU unit (1 where the pre-activation is > 0), a one-hot over window positions for each
max-pool window (ties on a whole piece go to the lowest position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch import nn

Vertex = tuple[int, int, int]
Op = tuple  # ("linear", W, e_w, b, e_b) | ("relu",) | ("maxpool", windows)


# ------------------------------------------------------------------------- exact numbers


def _scaled(values: np.ndarray) -> tuple[np.ndarray, int]:
    """float64 array -> (object array of ints N, e) with values == N / 2**e exactly."""
    fractions = [Fraction(float(x)) for x in values.ravel()]
    e = max((f.denominator.bit_length() - 1 for f in fractions), default=0)
    ints = [f.numerator * (1 << (e - (f.denominator.bit_length() - 1))) for f in fractions]
    return np.array(ints, dtype=object).reshape(values.shape), e


def _ops(model: nn.Sequential, n_in: int) -> list[Op]:
    """The model as exact integer operations on flat feature vectors."""
    ops: list[Op] = []
    shape: tuple[int, ...] = (n_in,)
    for module in model:
        if isinstance(module, nn.Linear):
            w, ew = _scaled(module.weight.detach().double().numpy())
            bias = module.bias
            b, eb = _scaled(
                np.zeros(module.out_features) if bias is None else bias.detach().double().numpy()
            )
            ops.append(("linear", w, ew, b, eb))
            shape = (module.out_features,)
        elif isinstance(module, nn.ReLU):
            ops.append(("relu",))
        elif isinstance(module, nn.Unflatten):
            shape = tuple(module.unflattened_size)
        elif isinstance(module, nn.Flatten):
            shape = (math.prod(shape),)
        elif isinstance(module, nn.MaxPool1d):
            ops.append(("maxpool", _windows(module, shape)))
            c, length = shape
            shape = (c, len(ops[-1][1]) // c)
        else:
            raise TypeError(f"oracle: unsupported layer {type(module).__name__}")
    return ops


def _windows(pool: nn.MaxPool1d, shape: tuple[int, ...]) -> list[list[int]]:
    """Flat input positions of every window, channel-major (the library's order)."""
    k = int(np.atleast_1d(pool.kernel_size)[0])
    stride = int(np.atleast_1d(pool.stride)[0])
    if int(np.atleast_1d(pool.padding)[0]) or int(np.atleast_1d(pool.dilation)[0]) != 1:
        raise TypeError("oracle: MaxPool1d with padding or dilation")
    if pool.ceil_mode:
        raise TypeError("oracle: MaxPool1d with ceil_mode")
    c, length = shape
    n_out = (length - k) // stride + 1
    return [
        [ch * length + w * stride + r for r in range(k)] for ch in range(c) for w in range(n_out)
    ]


# ----------------------------------------------------------------------- generic pieces


@dataclass
class _Piece:
    """A convex piece of the domain: its shape, the affine map of the current features
    (object array ``[F, k + 1]`` of ints over ``2**scale``) and the code bits so far."""

    shape: object
    coef: np.ndarray
    scale: int
    bits: tuple[int, ...]


def _linear(piece: _Piece, w: np.ndarray, ew: int, b: np.ndarray, eb: int) -> _Piece:
    s = max(ew + piece.scale, eb)
    coef = w.dot(piece.coef) * (1 << (s - ew - piece.scale))
    coef[:, 0] = coef[:, 0] + b * (1 << (s - eb))
    return _Piece(piece.shape, coef, s, piece.bits)


class _Geometry:
    """What the oracle needs from a domain: signs of affine functions on a piece and cuts."""

    def signs(self, shape, g) -> tuple[bool, bool]:  # (some point > 0, some point < 0)
        raise NotImplementedError

    def split(self, shape, g) -> tuple[object, object]:  # (g >= 0 part, g <= 0 part)
        raise NotImplementedError


def _relu(pieces: list[_Piece], geo: _Geometry) -> list[_Piece]:
    """Split by every unit in turn, then zero the inactive units."""
    n = pieces[0].coef.shape[0] if pieces else 0
    states = [[] for _ in pieces]
    current = list(zip(pieces, states, strict=True))
    for unit in range(n):
        after = []
        for piece, state in current:
            g = piece.coef[unit]
            pos, neg = geo.signs(piece.shape, g)
            if pos and neg:
                above, below = geo.split(piece.shape, g)
                after.append((_Piece(above, piece.coef, piece.scale, piece.bits), state + [1]))
                after.append((_Piece(below, piece.coef, piece.scale, piece.bits), state + [0]))
            else:
                after.append((piece, state + [int(pos)]))
        current = after
    out = []
    for piece, state in current:
        coef = piece.coef.copy()
        for unit, on in enumerate(state):
            if not on:
                coef[unit] = 0
        out.append(_Piece(piece.shape, coef, piece.scale, piece.bits + tuple(state)))
    return out


def _maxpool(pieces: list[_Piece], windows: list[list[int]], geo: _Geometry) -> list[_Piece]:
    """Cells where each window's winner (lowest position among the maxima) is constant."""
    current = [(p, []) for p in pieces]
    for window in windows:
        after = []
        for piece, winners in current:
            for k, pos in enumerate(window):
                shape = piece.shape
                for j, other in enumerate(window):
                    if j == k or shape is None:
                        continue
                    g = piece.coef[pos] - piece.coef[other]
                    if all(x == 0 for x in g):
                        shape = None if j < k else shape  # a tie on the whole piece
                        continue
                    above, below = geo.signs(shape, g)
                    if not above:
                        shape = None  # what is left has no area
                    elif below:
                        shape = geo.split(shape, g)[0]
                if shape is not None:
                    after.append(
                        (_Piece(shape, piece.coef, piece.scale, piece.bits), winners + [k])
                    )
        current = after
    out = []
    for piece, winners in current:
        rows = [window[k] for window, k in zip(windows, winners, strict=True)]
        onehot = []
        for window, k in zip(windows, winners, strict=True):
            onehot += [int(r == k) for r in range(len(window))]
        coef = piece.coef[rows]
        out.append(_Piece(piece.shape, coef, piece.scale, piece.bits + tuple(onehot)))
    return out


def _run(pieces: list[_Piece], ops: list[Op], geo: _Geometry) -> list[_Piece]:
    for op in ops:
        if op[0] == "linear":
            pieces = [_linear(p, *op[1:]) for p in pieces]
        elif op[0] == "relu":
            pieces = _relu(pieces, geo)
        else:
            pieces = _maxpool(pieces, op[1], geo)
    return pieces


# ------------------------------------------------------------------------------- plane


def _reduce(v: Vertex) -> Vertex:
    d = math.gcd(*v)
    return (v[0] // d, v[1] // d, v[2] // d)


def _value(g, v: Vertex) -> int:
    """``w · g(x / w, y / w)``: same sign as g at the point."""
    return g[0] * v[0] + g[1] * v[1] + g[2] * v[2]


class _PlaneGeometry(_Geometry):
    def signs(self, shape, g) -> tuple[bool, bool]:
        values = [_value(g, v) for v in shape]
        return max(values) > 0, min(values) < 0

    def split(self, shape, g):
        values = [_value(g, v) for v in shape]
        above: list[Vertex] = []
        below: list[Vertex] = []
        n = len(shape)
        for i in range(n):
            j = (i + 1) % n
            fi, fj, vi, vj = values[i], values[j], shape[i], shape[j]
            if fi >= 0:
                above.append(vi)
            if fi <= 0:
                below.append(vi)
            if (fi > 0 > fj) or (fi < 0 < fj):
                point = tuple(fi * b - fj * a for a, b in zip(vi, vj, strict=True))
                if point[0] < 0:
                    point = tuple(-x for x in point)
                point = _reduce(point)
                above.append(point)
                below.append(point)
        return above, below


def polygon_area(shape: list[Vertex]) -> Fraction:
    """Exact area of a counter-clockwise homogeneous polygon."""
    pts = [(Fraction(x, w), Fraction(y, w)) for w, x, y in shape]
    twice = sum(
        (a[0] * b[1] - b[0] * a[1] for a, b in zip(pts, pts[1:] + pts[:1], strict=True)),
        Fraction(0),
    )
    return twice / 2


@dataclass(frozen=True)
class ExactRegion:
    """One region: its code bits and its polygon (homogeneous vertices) or interval."""

    bits: tuple[int, ...]
    shape: object


def plane_regions(
    model: nn.Sequential, origin: torch.Tensor, u: torch.Tensor, v: torch.Tensor, extent: float
) -> list[ExactRegion]:
    """Exact regions of ``model`` in ``{origin + s·u + t·v : |s|, |t| <= extent}``."""
    basis = np.stack([origin.double().numpy(), u.double().numpy(), v.double().numpy()], axis=1)
    coef, scale = _scaled(basis)
    e = Fraction(float(extent))
    q, p = e.denominator, e.numerator
    square = [(q, -p, -p), (q, p, -p), (q, p, p), (q, -p, p)]
    pieces = _run([_Piece(square, coef, scale, ())], _ops(model, len(basis)), _PlaneGeometry())
    return [ExactRegion(piece.bits, piece.shape) for piece in pieces]


def centroid(shape: list[Vertex]) -> tuple[float, float]:
    """Vertex mean of a polygon (an interior point of a convex polygon), as floats."""
    xs = sum(Fraction(x, w) for w, x, _ in shape) / len(shape)
    ys = sum(Fraction(y, w) for w, _, y in shape) / len(shape)
    return float(xs), float(ys)


# ----------------------------------------------------------------------------- segment


class _SegmentGeometry(_Geometry):
    """Pieces are intervals ``(t0, t1)`` of Fractions; g = g0 + g1·t."""

    def signs(self, shape, g) -> tuple[bool, bool]:
        t0, t1 = shape
        ends = (g[0] + g[1] * t0, g[0] + g[1] * t1)
        return max(ends) > 0, min(ends) < 0

    def split(self, shape, g):
        t0, t1 = shape
        cross = Fraction(-g[0]) / g[1]
        left, right = (t0, cross), (cross, t1)
        return (right, left) if g[1] > 0 else (left, right)


def segment_regions(model: nn.Sequential, a: torch.Tensor, b: torch.Tensor) -> list[ExactRegion]:
    """Exact pieces of ``model`` along ``a + t·(b − a)``, t ∈ [0, 1], in increasing t;
    neighbours with the same code are one region."""
    ends, scale = _scaled(np.stack([a.double().numpy(), b.double().numpy()], axis=1))
    coef = ends.copy()
    coef[:, 1] = ends[:, 1] - ends[:, 0]
    start = _Piece((Fraction(0), Fraction(1)), coef, scale, ())
    pieces = _run([start], _ops(model, len(coef)), _SegmentGeometry())
    pieces.sort(key=lambda p: p.shape[0])
    merged: list[ExactRegion] = []
    for piece in pieces:
        if merged and merged[-1].bits == piece.bits:
            merged[-1] = ExactRegion(piece.bits, (merged[-1].shape[0], piece.shape[1]))
        else:
            merged.append(ExactRegion(piece.bits, piece.shape))
    return merged


def code_set(bits: np.ndarray | list) -> set[bytes]:
    """Rows of a 0/1 array as a set of bytes (for comparing codes)."""
    rows = np.asarray(bits, dtype=np.uint8)
    return {row.tobytes() for row in rows}
