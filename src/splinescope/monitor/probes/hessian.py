"""Curvature over training: top-k Hessian eigenvalues, trace and spectral density."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from splinescope.landscape import hessian_summary
from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.registry import ArrayKey, Outputs, ScalarKey, probe_kind


@probe_kind("hessian", figure="splinescope.report.figures:hessian_figures")
@dataclass(frozen=True)
class HessianProbe:
    """Hessian of the training loss on the first ``n_points`` training points (one fixed
    batch, the same at every step): ``top_1..top_k`` (descending), ``trace`` ± ``trace_se``
    (Hutch++), ``n_outliers`` separated from the bulk (SLQ density), ``n_hvp``; arrays
    ``eigenvalues``, ``residual_norms``, ``density_grid``, ``density``, ``outliers``.

    Sagun et al., "Empirical Analysis of the Hessian of Over-Parametrized Neural Networks".
    """

    k: int = 5
    n_points: int = 256
    tol: float = 1e-3
    seed: int = 0
    name: str = "hessian"
    needs: tuple[str, ...] = field(default=("train", "loss_fn"), init=False, repr=False)

    def outputs(self) -> Outputs:
        return Outputs(
            (
                ScalarKey("top_1", "top Hessian eigenvalue", headline=True),
                ScalarKey("top_*", "k-th largest Hessian eigenvalue"),
                ScalarKey("trace", "Hessian trace (Hutch++)", headline=True),
                ScalarKey("trace_se", "standard error of the trace"),
                ScalarKey("n_outliers", "eigenvalues outside the bulk"),
                ScalarKey("n_hvp", "Hessian-vector products"),
                ScalarKey("eig_converged", "converged share of the top-k eigenvalues"),
            ),
            (
                ArrayKey("eigenvalues", "top-k eigenvalues", "[k]", "float64", report=True),
                ArrayKey("residual_norms", "Lanczos residual norms", "[k]", "float64"),
                ArrayKey("density_grid", "eigenvalue grid", "[G]", "float64", report=True),
                ArrayKey("density", "spectral density on the grid", "[G]", "float64", report=True),
                ArrayKey("outliers", "outlier eigenvalues", "[n_outliers]", "float64"),
            ),
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        batch = (ctx.x_train[: self.n_points], ctx.y_train[: self.n_points])
        summary = hessian_summary(model, ctx.loss_fn, batch, k=self.k, tol=self.tol, seed=self.seed)
        eig, density = summary.eigen, summary.density
        scalars = {f"top_{i}": float(v) for i, v in enumerate(eig.eigenvalues.tolist(), start=1)}
        scalars.update(
            trace=summary.trace.trace,
            trace_se=summary.trace.standard_error,
            n_outliers=float(density.n_outliers),
            n_hvp=float(summary.n_hvp),
            eig_converged=float(eig.converged.double().mean()),
        )
        arrays = {
            "eigenvalues": eig.eigenvalues.numpy(),
            "residual_norms": eig.residual_norms.numpy(),
            "density_grid": density.grid.numpy(),
            "density": density.density.numpy(),
            "outliers": density.outliers.numpy(),
        }
        return ProbeResult(scalars=scalars, arrays=arrays)
