"""HSIC building blocks: Gram matrices, centring, and the biased and unbiased estimators.

Conventions (n points, Gram matrices ``K``, ``L`` of shape ``[n, n]``):

* biased (Gretton et al. 2005): ``HSIC_0 = tr(K H L H) / (n - 1)^2`` with ``H = I - 11^T/n``.
* unbiased (Song et al. 2012): with ``K~``, ``L~`` the Grams with zeroed diagonals,
  ``HSIC_1 = [tr(K~ L~) + 1^T K~ 1 * 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n(n-3))``.
  It equals the inner product of U-centred Grams (Szekely & Rizzo 2014) divided by
  ``n(n-3)``, so Cauchy-Schwarz bounds the unbiased CKA by 1 in magnitude, also for sums of
  per-batch estimates (minibatch CKA).

Products of row or column blocks run in the input dtype; everything summed across blocks,
and every scalar, is float64.
"""

from __future__ import annotations

import torch

ROW_BLOCK = 4096
COL_BLOCK = 512


def centred(x: torch.Tensor) -> torch.Tensor:
    """``x - mean(x, 0)`` in x's dtype, with the mean accumulated in float64."""
    mean = x.sum(dim=0, dtype=torch.float64) / x.shape[0]
    return x - mean.to(x.dtype)


def is_constant(x: torch.Tensor) -> bool:
    """Whether every row of ``x`` equals the first (zero variance in every feature)."""
    return bool((x == x[:1]).all())


def centred_blocks(x: torch.Tensor) -> list[torch.Tensor]:
    """Centred column blocks of ``x`` (one copy of ``x`` in all), mean accumulated in float64."""
    mean = (x.sum(dim=0, dtype=torch.float64) / x.shape[0]).to(x.dtype)
    return [
        x[:, i : i + COL_BLOCK] - mean[i : i + COL_BLOCK] for i in range(0, x.shape[1], COL_BLOCK)
    ]


def _block_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a^T b`` accumulated in float64 over row blocks of ``ROW_BLOCK``."""
    n = a.shape[0]
    if n <= ROW_BLOCK:
        return (a.T @ b).to(torch.float64)
    out = torch.zeros(a.shape[1], b.shape[1], dtype=torch.float64, device=a.device)
    for i in range(0, n, ROW_BLOCK):
        out += (a[i : i + ROW_BLOCK].T @ b[i : i + ROW_BLOCK]).to(torch.float64)
    return out


def cross_fro2(xb: list[torch.Tensor], yb: list[torch.Tensor] | None = None) -> torch.Tensor:
    """``||x^T y||_F^2`` (float64) from column blocks; ``yb=None`` means ``y = x`` (half the work)."""
    device = xb[0].device
    if yb is None:
        total = torch.zeros((), dtype=torch.float64, device=device)
        for i, a in enumerate(xb):
            for j in range(i, len(xb)):
                weight = 1.0 if i == j else 2.0
                total += weight * _block_product(a, xb[j]).square().sum()
        return total
    total = torch.zeros((), dtype=torch.float64, device=device)
    for a in xb:
        for b in yb:
            total += _block_product(a, b).square().sum()
    return total


def linear_gram(x: torch.Tensor) -> torch.Tensor:
    """``x x^T`` as float64 ``[n, n]``, accumulated over column blocks."""
    out = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(0, x.shape[1], COL_BLOCK):
        block = x[:, i : i + COL_BLOCK]
        out += (block @ block.T).to(torch.float64)
    return out


def median_distance(x: torch.Tensor) -> float:
    """Median (mean of the middle two for an even count) of the distances between rows of ``x``."""
    xd = x.to(torch.float64)
    dist = torch.cdist(xd, xd)
    iu = torch.triu_indices(x.shape[0], x.shape[0], offset=1, device=x.device)
    v = dist[iu[0], iu[1]]
    m = v.numel()
    if m % 2:
        return float(v.kthvalue((m + 1) // 2).values)
    return 0.5 * float(v.kthvalue(m // 2).values + v.kthvalue(m // 2 + 1).values)


def rbf_gram(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``exp(-||x_i - x_j||^2 / (2 sigma^2))`` as float64 ``[n, n]``."""
    xd = x.to(torch.float64)
    sq = torch.cdist(xd, xd).square()
    return torch.exp(-sq / (2.0 * sigma * sigma))


def hsic_biased_gram(k: torch.Tensor, l_: torch.Tensor) -> torch.Tensor:
    """Gretton's biased HSIC from float64 Grams: ``tr(KHLH) / (n-1)^2``."""
    n = k.shape[0]
    kc = k - k.mean(dim=0, keepdim=True)
    kc = kc - kc.mean(dim=1, keepdim=True)
    return (kc * l_).sum() / (n - 1) ** 2


def hsic_unbiased_gram(k: torch.Tensor, l_: torch.Tensor) -> torch.Tensor:
    """Song et al.'s unbiased HSIC from float64 Grams, in O(n^2)."""
    n = k.shape[0]
    kt = k - torch.diag_embed(torch.diagonal(k))
    lt = l_ - torch.diag_embed(torch.diagonal(l_))
    k1, l1 = kt.sum(dim=1), lt.sum(dim=1)
    trace = (kt * lt).sum()
    term2 = k1.sum() * l1.sum() / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (k1 @ l1)
    return (trace + term2 - term3) / (n * (n - 3))


def u_centre(k: torch.Tensor) -> torch.Tensor:
    """The U-centred Gram (zero diagonal): ``<u(K), u(L)> / (n(n-3))`` is the unbiased HSIC."""
    n = k.shape[0]
    kt = k - torch.diag_embed(torch.diagonal(k))
    row = kt.sum(dim=1, keepdim=True) / (n - 2)
    total = kt.sum() / ((n - 1) * (n - 2))
    out = kt - row - row.T + total
    out.diagonal().zero_()
    return out


def linear_hsic_terms(
    x: torch.Tensor, y: torch.Tensor, estimator: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(HSIC(x, y), HSIC(x, x), HSIC(y, y)) for linear kernels (features centred here).

    Chooses the cheaper of the feature-space form (``n (d1^2 + d2^2 + d1 d2)``) and the Gram
    form (``n^2 (d1 + d2)``); both give the same numbers.
    """
    n, d1 = x.shape
    d2 = y.shape[1]
    if n * (d1 + d2) < (d1 * d1 + d2 * d2) / 2 + d1 * d2:
        k, l_ = linear_gram(centred(x)), linear_gram(centred(y))
        fn = hsic_biased_gram if estimator == "biased" else hsic_unbiased_gram
        return fn(k, l_), fn(k, k), fn(l_, l_)
    xb, yb = centred_blocks(x), centred_blocks(y)
    xy = cross_fro2(xb, yb)
    xx = cross_fro2(xb)
    yy = cross_fro2(yb)
    if estimator == "biased":
        norm = (n - 1) ** 2
        return xy / norm, xx / norm, yy / norm
    # centred features: 1^T K~ 1 = -sum k_ii and K~ 1 = -diag(K)
    kd = sum(b.square().sum(dim=1, dtype=torch.float64) for b in xb)
    ld = sum(b.square().sum(dim=1, dtype=torch.float64) for b in yb)

    def unbiased(fro2: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        trace = fro2 - a @ b
        term2 = a.sum() * b.sum() / ((n - 1) * (n - 2))
        term3 = 2.0 / (n - 2) * (a @ b)
        return (trace + term2 - term3) / (n * (n - 3))

    return unbiased(xy, kd, ld), unbiased(xx, kd, kd), unbiased(yy, ld, ld)
