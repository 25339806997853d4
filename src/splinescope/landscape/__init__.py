"""Loss-surface curvature: Hessian/GGN-vector products, Lanczos, Hutch++, spectral density.

Model-level functions (build the operator over the data and run the algorithm)::

    hessian_eigenvalues(model, loss_fn, data, k=5, which="largest", tol=1e-4)
    hessian_trace(model, loss_fn, data, rtol=1e-2)
    hessian_density(model, loss_fn, data, n_starts=4, n_steps=60)
    hessian_summary(model, loss_fn, data, k=5)   # all three from one operator (HessianSummary)

Operator-level pieces for any symmetric matvec: ``CurvatureOperator``,
``lanczos_eigenvalues``, ``estimate_trace``, ``spectral_density``.
"""

from splinescope.landscape.api import (
    HessianSummary,
    hessian_density,
    hessian_eigenvalues,
    hessian_summary,
    hessian_trace,
)
from splinescope.landscape.density import DensityResult, spectral_density
from splinescope.landscape.lanczos import EigenResult, lanczos_eigenvalues
from splinescope.landscape.operators import CurvatureOperator
from splinescope.landscape.trace import TraceResult, estimate_trace

__all__ = [
    "CurvatureOperator",
    "DensityResult",
    "EigenResult",
    "HessianSummary",
    "TraceResult",
    "estimate_trace",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_summary",
    "hessian_trace",
    "lanczos_eigenvalues",
    "spectral_density",
]
