"""The local affine map of a piecewise-linear network at an input, and exact point codes.

The engine (exact propagation over a domain) is in :mod:`._engine`; what it supports is in
:mod:`._ops`. Names of the engine used elsewhere are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry._engine import (
    Affine,
    Domain,
    PointDomain,
    Propagation,
    UnitRecord,
    as_sample,
    code_bits,
    propagate,
    propagate_input,
    trace,
)

__all__ = [
    "Affine",
    "Domain",
    "LocalAffineMap",
    "PointDomain",
    "Propagation",
    "UnitRecord",
    "as_sample",
    "code_bits",
    "local_affine_map",
    "point_codes",
    "propagate",
    "propagate_input",
    "trace",
]


@dataclass(frozen=True)
class LocalAffineMap:
    """The exact affine map of the region containing x: ``model(y) = A @ y.flatten() + b``.

    Attributes:
        A: float64 ``[n_outputs, n_inputs]`` (inputs and outputs flattened).
        b: float64 ``[n_outputs]``.
        input_shape: per-sample input shape (reshape a row of A to it to see it as an image).
        on_boundary: True when some unit that varies with the input is exactly 0 at x (x lies
            on a region boundary; the map given treats those units as inactive). Units that are
            identically 0 near x (fed only by inactive units) do not count.
    """

    A: torch.Tensor
    b: torch.Tensor
    input_shape: tuple[int, ...]
    on_boundary: bool

    def __iter__(self):
        return iter((self.A, self.b))

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """``[N, *input_shape] -> [N, n_outputs]`` by the affine map."""
        flat = torch.as_tensor(y, dtype=torch.float64).reshape(-1, self.A.shape[1])
        return flat @ self.A.T + self.b

    def rows(self) -> torch.Tensor:
        """``[n_outputs, *input_shape]``: each output's weights as an input-shaped array
        (the "linear interpreter" view: for images, one template per class)."""
        return self.A.reshape(self.A.shape[0], *self.input_shape)


def local_affine_map(model: nn.Module, x: torch.Tensor, *, check: bool = True) -> LocalAffineMap:
    """The affine map ``(A, b)`` of the activation region containing one input ``x``.

    Args:
        model: a piecewise-linear network (see :func:`trace` for what is supported).
        x: one input ``[*input_shape]``, without batch dimension.
        check: verify ``A @ x + b == model(x)`` (float64, relative 1e-9) and raise if not.

    Returns:
        :class:`LocalAffineMap`, unpackable as ``A, b = local_affine_map(model, x)``.
    """
    gm = trace(model)
    point = as_sample(x, "x")
    d = point.numel()
    coef = torch.zeros((1, d + 1, *point.shape), dtype=torch.float64)
    coef[0, 0] = point
    coef[0, 1:] = torch.eye(d, dtype=torch.float64).reshape(d, *point.shape)
    domain = PointDomain(1)
    result = propagate_input(
        gm, domain, Affine(coef), model=model, argument="x", shape=tuple(point.shape)
    )
    out = result.output.coef[0].reshape(d + 1, -1)
    jac = out[1:].T.contiguous()
    b = out[0] - jac @ point.reshape(-1)
    on_boundary = domain.on_boundary
    if check:
        with torch.no_grad():
            reference = gm(point[None]).reshape(-1)
        scale = reference.abs().max().clamp_min(1.0)
        if not torch.allclose(jac @ point.reshape(-1) + b, reference, rtol=0, atol=1e-9 * scale):
            raise SplinescopeError("model: the local affine map does not reproduce model(x)")
    return LocalAffineMap(jac, b, tuple(point.shape), bool(on_boundary))


def point_codes(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, list[UnitRecord]]:
    """bool ``[N, n_bits]`` binary codes of N inputs ``[N, *input_shape]`` by the exact engine
    (float64 forward), with the layer records that lay out the bits."""
    gm = trace(model)
    points = torch.as_tensor(x).detach().to(device="cpu", dtype=torch.float64)
    coef = points[:, None]
    result = propagate(gm, PointDomain(points.shape[0]), Affine(coef))
    return result.bits(), result.records
