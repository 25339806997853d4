"""Trace estimation: Hutch++ (or plain Hutchinson) with a standard error and a stopping rule.

Hutch++ (Meyer, Musco, Musco, Persson 2021), with its last phase adaptive:

1. sketch: an orthonormal ``Q`` of ``n_sketch`` columns on which the trace is taken exactly,
   ``tr(Q^T A Q)``. ``sketch="lanczos"`` (default, the Krylov-aware variant of Chen & Hallman
   2023): ``Q`` is the basis of ``n_sketch`` Lanczos steps from a Gaussian start, and
   ``Q^T A Q`` is their tridiagonal, so the exact part costs ``n_sketch`` products and the
   Krylov space holds the outlying eigenvectors far better than one product with a random
   block. ``sketch="random"`` is the original: ``Q = orth(A S)`` for Rademacher ``S``, then
   ``A Q`` (``2 n_sketch`` products).
2. Hutchinson on the deflated rest: samples ``x_i = g_i^T P A P g_i`` with ``P = I - Q Q^T``
   and Rademacher ``g_i``, one product each, drawn until the relative standard error
   ``SE / |trace|`` is at most ``rtol`` (after at least ``min_samples``) or the budget
   ``max_hvp`` is spent.

The estimate is ``tr(Q^T A Q) + mean(x)``; given ``Q`` it is unbiased and its standard error is
``std(x, ddof=1) / sqrt(len(x))`` (the exact part has none). ``method="hutchinson"`` has no
sketch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from splinescope.errors import SplinescopeError
from splinescope.landscape.lanczos import lanczos

__all__ = ["TraceResult", "estimate_trace"]


@dataclass(frozen=True)
class TraceResult:
    """A trace estimate with its standard error.

    Attributes:
        trace: the estimate.
        standard_error: its standard error (0 when the sketch spans the whole space).
        relative_standard_error: ``standard_error / |trace|``.
        n_hvp: operator products used (``n_sketch + n_samples`` with the Lanczos sketch,
            ``2 n_sketch + n_samples`` with the random one).
        n_sketch, n_samples: the sketch size and the number of Hutchinson samples.
        converged: the stopping rule ``relative_standard_error <= rtol`` was met.
        exact_part: ``tr(Q^T A Q)``, the part taken exactly on the sketch.
        samples: ``(n_samples,)`` float64, the deflated Hutchinson samples.
        method: the variant.
    """

    trace: float
    standard_error: float
    relative_standard_error: float
    n_hvp: int
    n_sketch: int
    n_samples: int
    converged: bool
    exact_part: float
    samples: Tensor
    method: str

    def confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """A Student-t interval on the Hutchinson samples (``n_samples - 1`` degrees of freedom)."""
        from scipy.stats import t as student_t

        if self.n_samples < 2 or self.standard_error == 0.0:
            return (self.trace, self.trace)
        half = float(student_t.ppf(0.5 + level / 2, self.n_samples - 1)) * self.standard_error
        return (self.trace - half, self.trace + half)


def _rademacher(n: int, cols: int, generator: torch.Generator) -> Tensor:
    signs = torch.randint(0, 2, (n, cols), generator=generator, dtype=torch.int8)
    return signs.to(torch.float64).mul_(2).sub_(1)


def estimate_trace(
    matvec: Callable[[Tensor], Tensor],
    n: int,
    *,
    method: str = "hutch++",
    rtol: float = 1e-2,
    max_hvp: int = 300,
    min_samples: int = 10,
    n_sketch: int | None = None,
    sketch: str = "lanczos",
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> TraceResult:
    """Estimate ``tr(A)`` of the symmetric ``n x n`` operator ``matvec`` (float64 vectors).

    ``n_sketch`` defaults to ``min(50, max_hvp // 2)`` with the Lanczos sketch (room for the
    one-outlier-per-class Hessians of classifiers with tens of classes, and half the budget
    left for the samples) and to ``min(20, max_hvp // 3)`` with the random one (Hutch++'s
    thirds); ``"hutchinson"`` uses none. Measured on the benchmark CNN (64 inputs, 6 seeds, 99
    products): median relative error 1.1e-2 (Lanczos, 49), 1.8e-2 (Lanczos, 20), 2.0e-2
    (random, 33).
    """
    if method not in ("hutch++", "hutchinson"):
        raise SplinescopeError(f"method: expected 'hutch++' or 'hutchinson', got {method!r}")
    if not (rtol > 0):
        raise SplinescopeError(f"rtol: expected a positive float, got {rtol!r}")
    if min_samples < 2:
        raise SplinescopeError(
            f"min_samples: need at least 2 for a standard error, got {min_samples}"
        )
    if sketch not in ("lanczos", "random"):
        raise SplinescopeError(f"sketch: expected 'lanczos' or 'random', got {sketch!r}")
    if method == "hutchinson":
        n_sketch = 0
    elif n_sketch is None and sketch == "lanczos":
        n_sketch = max(0, min(50, max_hvp // 2))
    elif n_sketch is None:
        n_sketch = max(0, min(20, max_hvp // 3))
    n_sketch = min(int(n_sketch), n)
    cost = n_sketch if sketch == "lanczos" else 2 * n_sketch
    if max_hvp < cost + 2 and n_sketch < n:
        raise SplinescopeError(
            f"max_hvp: {max_hvp} products cannot pay for a {sketch} sketch of {n_sketch} "
            f"({cost} products) plus 2 samples"
        )
    generator = torch.Generator().manual_seed(seed)
    n_hvp = 0
    exact = 0.0
    q = torch.zeros(n, 0, dtype=torch.float64, device=device)
    if n_sketch > 0 and sketch == "lanczos":
        start = torch.randn(n, generator=generator, dtype=torch.float64).to(device)
        run = lanczos(matvec, start, n_sketch, generator=generator)
        q = run.basis.T  # (n, n_sketch); Q^T A Q is the run's tridiagonal
        n_hvp += run.n_matvec
        exact = float(run.alpha.sum())
    elif n_sketch > 0:
        block = _rademacher(n, n_sketch, generator).to(device)
        ys = torch.stack([matvec(block[:, i]) for i in range(n_sketch)], dim=1)
        q, _ = torch.linalg.qr(ys)
        aq = torch.stack([matvec(q[:, i]) for i in range(n_sketch)], dim=1)
        n_hvp += 2 * n_sketch
        exact = float((q * aq).sum())
    if n_sketch == n:  # the sketch spans everything: the trace is exact
        return TraceResult(
            exact,
            0.0,
            0.0,
            n_hvp,
            n_sketch,
            0,
            True,
            exact,
            torch.zeros(0, dtype=torch.float64),
            _name(method, n_sketch, sketch),
        )

    samples: list[float] = []
    trace = se = rel = math.nan
    converged = False
    while n_hvp < max_hvp:
        g = _rademacher(n, 1, generator)[:, 0].to(device)
        if n_sketch > 0:
            g = g - q @ (q.T @ g)
        samples.append(float(torch.dot(g, matvec(g))))
        n_hvp += 1
        if len(samples) >= 2:
            x = torch.tensor(samples, dtype=torch.float64)
            trace = exact + float(x.mean())
            se = float(x.std(unbiased=True)) / math.sqrt(len(samples))
            rel = se / abs(trace) if trace != 0 else math.inf
            if len(samples) >= min_samples and rel <= rtol:
                converged = True
                break
    return TraceResult(
        trace=trace,
        standard_error=se,
        relative_standard_error=rel,
        n_hvp=n_hvp,
        n_sketch=n_sketch,
        n_samples=len(samples),
        converged=converged,
        exact_part=exact,
        samples=torch.tensor(samples, dtype=torch.float64),
        method=_name(method, n_sketch, sketch),
    )


def _name(method: str, n_sketch: int, sketch: str) -> str:
    if n_sketch == 0:
        return "hutchinson, rademacher, stop on relative SE"
    return (
        f"hutch++ ({sketch} sketch of {n_sketch}), rademacher deflated samples, stop on relative SE"
    )
