"""Intrinsic dimension from nearest-neighbour distances: TwoNN and Levina-Bickel MLE.

Neighbours are exact: candidates come from chunked squared distances of the centred points in
their own dtype, then the distances to the ``k + 8`` best candidates are recomputed in float64
as ``|a - b|`` (no cancellation) and re-sorted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from splinescope.errors import SplinescopeError
from splinescope.representation._checks import as_tensor, choice
from splinescope.representation._hsic import centred

METHODS = ("twonn", "mle")
TWONN_FITS = ("regression", "mle")
MLE_AVERAGES = ("inverse", "direct")
_MARGIN = 8
_CHUNK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class IntrinsicDimension:
    """An intrinsic-dimension estimate, how it was made, and the points it used."""

    dimension: float
    method: str
    estimator: str
    k: int | None
    n: int
    n_duplicates_removed: int
    local: torch.Tensor | None = None


def neighbour_distances(x: torch.Tensor, k: int) -> torch.Tensor:
    """Float64 distances ``[n, k]`` of each row of ``x`` to its ``k`` nearest other rows."""
    n = x.shape[0]
    xc = centred(x)
    sq = xc.square().sum(dim=1)
    m = min(n - 1, k + _MARGIN)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    out = torch.empty(n, k, dtype=torch.float64, device=x.device)
    x64 = xc.to(torch.float64)
    for i in range(0, n, chunk):
        rows = slice(i, min(n, i + chunk))
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (xc[rows] @ xc.T)
        idx = torch.arange(rows.start, rows.stop, device=x.device)
        d2[idx - i, idx] = float("inf")  # never the point itself
        cand = d2.topk(m, dim=1, largest=False).indices
        exact = (x64[cand] - x64[rows, None, :]).norm(dim=2)
        out[rows] = exact.sort(dim=1).values[:, :k]
    return out


def _dedupe(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    unique = torch.unique(x, dim=0)
    removed = x.shape[0] - unique.shape[0]
    if removed:
        warnings.warn(
            f"x: {removed} duplicate point(s) removed before estimating the intrinsic dimension "
            f"({unique.shape[0]} distinct points remain)",
            stacklevel=3,
        )
    return unique, removed


def intrinsic_dimension(
    x: torch.Tensor,
    *,
    method: str = "twonn",
    k: int = 20,
    twonn_fit: str = "regression",
    discard: float = 0.1,
    mle_average: str = "inverse",
) -> IntrinsicDimension:
    """Intrinsic dimension of the points ``x`` ``[n, D]``.

    ``method="twonn"`` (Facco et al. 2017) uses ``mu = r2/r1``; ``twonn_fit="regression"`` is
    the paper's least-squares line through the origin of ``-log(1 - F(mu))`` vs ``log mu``
    with the largest ``discard`` fraction of ``mu`` left out; ``"mle"`` is
    ``(n - 1) / sum log mu``. ``method="mle"`` is Levina & Bickel (2004) with ``k``
    neighbours, local estimates ``[(1/(k-1)) sum_j log(T_k/T_j)]^-1``, averaged as inverses
    (MacKay & Ghahramani's correction, ``mle_average="inverse"``) or directly (the paper's
    ``"direct"``). Duplicate points are removed first, with a warning saying how many.
    """
    choice("method", method, METHODS)
    choice("twonn_fit", twonn_fit, TWONN_FITS)
    choice("mle_average", mle_average, MLE_AVERAGES)
    xt = as_tensor("x", x)
    if xt.ndim != 2:
        raise SplinescopeError(f"x: expected points of shape [n, D], got {tuple(xt.shape)}")
    xt, removed = _dedupe(xt)
    n = xt.shape[0]
    if method == "twonn":
        if not 0.0 <= discard < 1.0:
            raise SplinescopeError(f"discard: expected a fraction in [0, 1), got {discard!r}")
        if n < 3:
            raise SplinescopeError(f"n: TwoNN needs at least 3 distinct points, got {n}")
        r = neighbour_distances(xt, 2)
        mu = (r[:, 1] / r[:, 0]).sort().values
        log_mu = torch.log(mu)
        if twonn_fit == "mle":
            dim = (n - 1) / float(log_mu.sum())
            est = "TwoNN (Facco et al. 2017), maximum likelihood (n-1)/sum log mu"
        else:
            keep = max(2, int(math.floor(n * (1.0 - discard))))
            f_emp = torch.arange(1, n + 1, dtype=torch.float64, device=mu.device) / n
            xs, ys = log_mu[:keep], -torch.log1p(-f_emp[:keep])
            dim = float((xs * ys).sum() / (xs * xs).sum())
            est = (
                "TwoNN (Facco et al. 2017), regression of -log(1-F(mu)) on log mu through 0, "
                f"F(mu_(i)) = i/n, largest {discard:g} of mu discarded"
            )
        if not math.isfinite(dim) or dim <= 0:
            raise SplinescopeError("x: the TwoNN ratios are degenerate (all mu = 1)")
        return IntrinsicDimension(dim, "twonn", est, None, n, removed)
    if not (isinstance(k, int) and k >= 2):
        raise SplinescopeError(f"k: expected an integer >= 2, got {k!r}")
    if n <= k:
        raise SplinescopeError(f"k: needs more than k = {k} distinct points, got {n}")
    t = neighbour_distances(xt, k)
    inv_local = torch.log(t[:, -1:] / t[:, :-1]).sum(dim=1) / (k - 1)  # 1 / m_k(x_i)
    if mle_average == "inverse":
        dim = 1.0 / float(inv_local.mean())
        est = (
            "Levina-Bickel MLE (k-1 normalisation), MacKay-Ghahramani correction "
            "(inverse of the mean of inverse local estimates)"
        )
    else:
        dim = float((1.0 / inv_local).mean())
        est = "Levina-Bickel MLE (k-1 normalisation), mean of local estimates"
    return IntrinsicDimension(dim, "mle", est, k, n, removed, local=(1.0 / inv_local).cpu())
