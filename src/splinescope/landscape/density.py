"""Spectral density by stochastic Lanczos quadrature (SLQ), with outlier detection.

Each of ``n_starts`` runs draws a unit Gaussian start ``v`` and takes ``n_steps`` Lanczos
steps; the eigenpairs ``(theta_i, s_i)`` of its tridiagonal give the Gauss quadrature
``v^T f(A) v ~ sum_i s_i[0]^2 f(theta_i)`` (exact for polynomials of degree < 2 n_steps).
Averaged over starts, ``sum w_i theta_i^p`` estimates the spectral moment ``tr(A^p) / n``.
The density is the quadrature smoothed by a Gaussian of width ``sigma`` on a grid.

Outliers (eigenvalues separated from the bulk): in each run, a Ritz value is *resolved* if its
residual is at most ``resolve_tol`` times its distance to the nearest other Ritz value of the
run (an isolated eigenvalue, converged; inside a continuum the residual stays comparable to the
spacing); the bulk is spanned by the unresolved Ritz values. A resolved Ritz value beyond the
bulk's edge by more than ``gap`` times the bulk's width is an outlier of that run; values found
by at least half the runs (matched within ``1e-3 |theta|_max``) are reported, with their count.
The bulk edges are the medians over runs of the extreme unresolved Ritz values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from splinescope.errors import SplinescopeError
from splinescope.landscape.lanczos import lanczos, ritz

__all__ = ["DensityResult", "spectral_density"]


@dataclass(frozen=True)
class DensityResult:
    """An SLQ spectral density.

    Attributes:
        grid, density: ``(n_grid,)`` float64; ``density`` integrates to 1 over the real line
            (a Gaussian mixture with total weight 1) and is sampled on ``grid``.
        nodes, weights: ``(n_starts, n_steps)`` float64 quadrature nodes (Ritz values) and
            weights of each run; each row of ``weights`` sums to 1.
        residuals: ``(n_starts, n_steps)`` residual norms of the Ritz values.
        sigma: the Gaussian smoothing width used.
        outliers: ``(n_outliers,)`` float64, descending; eigenvalues outside the bulk.
        n_outliers: their count.
        bulk_edges: ``(low, high)``, the bulk's extent (median over runs).
        n_hvp: operator products used (``n_starts * n_steps``).
    """

    grid: Tensor
    density: Tensor
    nodes: Tensor
    weights: Tensor
    residuals: Tensor
    sigma: float
    outliers: Tensor
    n_outliers: int
    bulk_edges: tuple[float, float]
    n_hvp: int
    method: str = "stochastic Lanczos quadrature, gaussian starts, full re-orthogonalisation"

    def moments(self, powers: int = 4) -> Tensor:
        """``(powers,)`` estimates of ``tr(A^p) / n`` for ``p = 1..powers`` (unsmoothed)."""
        p = torch.arange(1, powers + 1, dtype=torch.float64)
        per_run = (self.weights[..., None] * self.nodes[..., None] ** p).sum(dim=1)
        return per_run.mean(dim=0)


def spectral_density(
    matvec: Callable[[Tensor], Tensor],
    n: int,
    *,
    n_starts: int = 4,
    n_steps: int = 60,
    sigma: float | None = None,
    bandwidth: float = 0.01,
    n_grid: int = 1000,
    resolve_tol: float = 1e-2,
    gap: float = 0.1,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> DensityResult:
    """SLQ density of the symmetric ``n x n`` operator ``matvec`` (vectors of ``dtype``).

    ``sigma`` defaults to ``bandwidth`` times the width of the Ritz-value range.
    """
    if not isinstance(n_starts, int) or n_starts < 1:
        raise SplinescopeError(f"n_starts: expected a positive int, got {n_starts!r}")
    if not isinstance(n_steps, int) or n_steps < 1:
        raise SplinescopeError(f"n_steps: expected a positive int, got {n_steps!r}")
    if n_grid < 2:
        raise SplinescopeError(f"n_grid: expected at least 2 grid points, got {n_grid}")
    steps = min(n_steps, n)
    generator = torch.Generator().manual_seed(seed)
    nodes, weights, residuals = [], [], []
    n_hvp = 0
    for _ in range(n_starts):
        start = torch.randn(n, generator=generator, dtype=torch.float64).to(device, dtype)
        run = lanczos(matvec, start, steps, generator=generator)
        n_hvp += run.n_matvec
        theta, s, res = ritz(run.alpha, run.beta)
        nodes.append(theta)
        weights.append(s[0, :] ** 2)
        residuals.append(res)
    nodes_t = torch.stack(nodes)
    weights_t = torch.stack(weights)
    residuals_t = torch.stack(residuals)

    lo, hi = float(nodes_t.min()), float(nodes_t.max())
    width = hi - lo if hi > lo else max(abs(hi), 1.0)
    if sigma is None:
        sigma = bandwidth * width
    if not (sigma > 0):
        raise SplinescopeError(f"sigma: expected a positive float, got {sigma!r}")
    grid = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, n_grid, dtype=torch.float64)
    z = (grid[:, None] - nodes_t.reshape(-1)[None, :]) / sigma
    kernel = torch.exp(-0.5 * z**2) / (sigma * math.sqrt(2 * math.pi))
    density = kernel @ (weights_t.reshape(-1) / n_starts)

    outliers, edges = _outliers(nodes_t, residuals_t, resolve_tol, gap)
    return DensityResult(
        grid=grid,
        density=density,
        nodes=nodes_t,
        weights=weights_t,
        residuals=residuals_t,
        sigma=float(sigma),
        outliers=outliers,
        n_outliers=int(outliers.numel()),
        bulk_edges=edges,
        n_hvp=n_hvp,
    )


def _outliers(
    nodes: Tensor, residuals: Tensor, resolve_tol: float, gap: float
) -> tuple[Tensor, tuple[float, float]]:
    scale = float(nodes.abs().max()) or 1.0
    match = 1e-3 * scale
    per_run: list[Tensor] = []
    lows, highs = [], []
    for theta, res in zip(nodes, residuals, strict=True):
        theta, order = theta.sort()
        res = res[order]
        spacing = torch.full_like(theta, math.inf)
        if theta.numel() > 1:
            diff = theta[1:] - theta[:-1]
            spacing[1:] = diff
            spacing[:-1] = torch.minimum(spacing[:-1], diff)
        resolved = res <= resolve_tol * spacing
        bulk = theta[~resolved]
        if bulk.numel() == 0:  # the run resolved every eigenvalue: no bulk to stand out from
            per_run.append(theta[:0])
            continue
        low, high = float(bulk.min()), float(bulk.max())
        lows.append(low)
        highs.append(high)
        margin = gap * max(high - low, match)
        far = resolved & ((theta > high + margin) | (theta < low - margin))
        per_run.append(theta[far])
    if not lows:
        return torch.zeros(0, dtype=torch.float64), (float(nodes.min()), float(nodes.max()))
    edges = (float(torch.tensor(lows).median()), float(torch.tensor(highs).median()))
    # Consensus: cluster candidate values across runs; keep those found by >= half the runs.
    candidates = torch.cat(per_run).sort(descending=True).values
    found: list[float] = []
    i = 0
    while i < candidates.numel():
        j = i
        while j + 1 < candidates.numel() and candidates[i] - candidates[j + 1] <= match:
            j += 1
        cluster = candidates[i : j + 1]
        if cluster.numel() * 2 >= nodes.shape[0]:
            found.append(float(cluster.mean()))
        i = j + 1
    return torch.tensor(found, dtype=torch.float64), edges
