"""Curvature over training: top-k Hessian eigenvalues, trace and spectral density."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from splinescope.landscape import hessian_summary
from splinescope.monitor.probe import ProbeContext, ProbeResult

_ARRAYS = ("eigenvalues", "residual_norms", "density_grid", "density", "outliers")


@dataclass(frozen=True)
class HessianProbe:
    """Hessian of the training loss on the first ``n_points`` training points (one fixed
    batch, the same at every step): ``top_1..top_k`` (descending), ``trace`` ± ``trace_se``
    (Hutch++), ``n_outliers`` separated from the bulk (SLQ density), ``n_hvp``; arrays
    ``eigenvalues``, ``density_grid``, ``density``, ``outliers``.

    Sagun et al., "Empirical Analysis of the Hessian of Over-Parametrized Neural Networks".
    """

    name: str = "hessian"
    needs: tuple[str, ...] = ("train", "loss_fn")
    k: int = 5
    n_points: int = 256
    tol: float = 1e-3
    seed: int = 0

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        batch = (ctx.x_train[: self.n_points], ctx.y_train[: self.n_points])
        record = hessian_summary(model, ctx.loss_fn, batch, k=self.k, tol=self.tol, seed=self.seed)
        scalars = {f"top_{i}": float(record[f"lambda_{i}"]) for i in range(1, self.k + 1)}
        for key in ("trace", "trace_se", "n_outliers", "n_hvp", "eig_converged"):
            scalars[key] = float(record[key])
        arrays = {key: np.asarray(record[key]) for key in _ARRAYS if key in record}
        return ProbeResult(scalars=scalars, arrays=arrays)
