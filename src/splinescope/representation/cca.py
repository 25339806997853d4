"""SVCCA (Raghu et al. 2017) and PWCCA (Morcos, Raghu & Bengio 2018) for ``[n, d]`` features.

Rows are data points, columns are neurons (google/svcca takes the transpose). Canonical
correlations are the cosines of the principal angles between the column spaces of the
centred features, computed as the singular values of ``Q_x^T Q_y`` with ``Q`` orthonormal
bases from an SVD (float64).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from splinescope.errors import SplinescopeError
from splinescope.representation._checks import features, min_n, same_n
from splinescope.representation._hsic import centred


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlations ``[m]`` (descending, in [0, 1]) and their summary ``value``.

    ``dims_x``/``dims_y`` are the directions kept from each input (the SVD step of SVCCA, or
    the numerical rank); ``weights`` ``[m]`` (PWCCA only, summing to 1) are the projection
    weights, computed from ``x``.
    """

    value: float
    correlations: torch.Tensor
    weights: torch.Tensor | None
    dims_x: int
    dims_y: int
    keep: float | None
    n: int
    variant: str
    summary: str
    conv: str


def _basis(name: str, xc: torch.Tensor, keep: float | None) -> torch.Tensor:
    """Orthonormal basis ``[n, k]`` of the leading directions of centred ``xc`` (float64)."""
    u, s, _ = torch.linalg.svd(xc, full_matrices=False)
    tol = float(s[0]) * max(xc.shape) * torch.finfo(torch.float64).eps
    rank = int((s > tol).sum())
    if rank == 0 or float(s[0]) == 0.0:
        raise SplinescopeError(f"{name}: constant features (zero variance): CCA is undefined")
    k = rank
    if keep is not None:
        energy = torch.cumsum(s[:rank].square(), 0) / s[:rank].square().sum()
        k = min(rank, int(torch.searchsorted(energy, torch.tensor(keep, dtype=energy.dtype))) + 1)
    return u[:, :k]


def _prepare(x, y, conv: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    xf = features("x", x, conv).to(torch.float64)
    yf = features("y", y, conv).to(device=xf.device, dtype=torch.float64)
    n = same_n("x", xf, "y", yf)
    min_n(n, 2, "CCA")
    return centred(xf), centred(yf), n


def _correlations(qx: torch.Tensor, qy: torch.Tensor, n: int):
    if qx.shape[1] + qy.shape[1] > n:
        warnings.warn(
            f"CCA with {qx.shape[1]} + {qy.shape[1]} directions on n = {n} points: the subspaces "
            "must intersect, so some canonical correlations are 1 by construction",
            stacklevel=3,
        )
    u, rho, _ = torch.linalg.svd(qx.T @ qy, full_matrices=False)
    return u, rho.clamp(0.0, 1.0)


def _check_keep(keep: float | None, allow_none: bool) -> None:
    if keep is None and allow_none:
        return
    if not (isinstance(keep, int | float) and 0.0 < keep <= 1.0):
        raise SplinescopeError(f"keep: expected a fraction of variance in (0, 1], got {keep!r}")


def svcca(
    x: torch.Tensor, y: torch.Tensor, *, keep: float = 0.99, conv: str = "flatten"
) -> CCAResult:
    """SVCCA of ``x`` ``[n, d1]`` and ``y`` ``[n, d2]``: mean canonical correlation.

    Each input is reduced by SVD to the fewest leading directions whose variance reaches
    ``keep`` of its total; CCA then runs on the reduced representations.
    """
    _check_keep(keep, allow_none=False)
    xc, yc, n = _prepare(x, y, conv)
    qx, qy = _basis("x", xc, keep), _basis("y", yc, keep)
    _, rho = _correlations(qx, qy, n)
    return CCAResult(
        value=float(rho.mean()),
        correlations=rho.cpu(),
        weights=None,
        dims_x=qx.shape[1],
        dims_y=qy.shape[1],
        keep=float(keep),
        n=n,
        variant=f"SVCCA (Raghu et al. 2017): SVD to {keep:g} of the variance, then CCA",
        summary="mean of the canonical correlations",
        conv=conv,
    )


def pwcca(
    x: torch.Tensor, y: torch.Tensor, *, keep: float | None = None, conv: str = "flatten"
) -> CCAResult:
    """PWCCA of ``x`` ``[n, d1]`` and ``y`` ``[n, d2]``: projection-weighted correlation.

    ``weights_i ~ sum_j |<h_i, x_j>|`` with ``h_i`` the unit-norm canonical variate of ``x``
    (a vector over the ``n`` points) and ``x_j`` the centred activations of neuron ``j``;
    ``value = sum_i weights_i rho_i``. Asymmetric: weights come from ``x``. ``keep`` (optional)
    applies the SVCCA reduction first; by default all numerically non-zero directions are used.
    """
    _check_keep(keep, allow_none=True)
    xc, yc, n = _prepare(x, y, conv)
    qx, qy = _basis("x", xc, keep), _basis("y", yc, keep)
    u, rho = _correlations(qx, qy, n)
    h = qx @ u  # [n, m] canonical variates of x, orthonormal columns
    alpha = (h.T @ xc).abs().sum(dim=1)
    weights = alpha / alpha.sum()
    return CCAResult(
        value=float((weights * rho).sum()),
        correlations=rho.cpu(),
        weights=weights.cpu(),
        dims_x=qx.shape[1],
        dims_y=qy.shape[1],
        keep=None if keep is None else float(keep),
        n=n,
        variant="PWCCA (Morcos et al. 2018): weights from |canonical variates of x . neurons of x|",
        summary="projection-weighted mean of the canonical correlations",
        conv=conv,
    )
