"""Centred kernel alignment (Kornblith et al. 2019), full-batch and minibatch.

>>> import torch
>>> x = torch.randn(100, 8)
>>> round(cka(x, 2 * x).value, 6)
1.0
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from splinescope.errors import SplinescopeError
from splinescope.representation import _hsic
from splinescope.representation._checks import as_tensor, choice, features, min_n, same_n

KERNELS = ("linear", "rbf")
ESTIMATORS = ("biased", "unbiased")
ESTIMATOR_NAMES = {
    "biased": "biased HSIC (Gretton et al. 2005)",
    "unbiased": "unbiased HSIC (Song et al. 2012)",
}
MINIBATCH_NAME = (
    "minibatch CKA: unbiased HSIC (Song et al. 2012) summed over batches (Nguyen et al. 2021)"
)
CLIPPING = "value = raw_value clipped to [0, 1]; |raw_value| <= 1 by Cauchy-Schwarz"


@dataclass(frozen=True)
class CKAResult:
    """CKA of two representations of the same ``n`` points.

    ``value`` is in [0, 1]; ``raw_value`` is the estimate before clipping (the unbiased
    estimator can be slightly negative for unrelated representations); ``clipped`` says
    whether they differ. ``hsic_*`` are the estimator's HSIC values, float64.
    """

    value: float
    raw_value: float
    clipped: bool
    hsic_xy: float
    hsic_xx: float
    hsic_yy: float
    kernel: str
    estimator: str
    variant: str
    sigma_x: float | None
    sigma_y: float | None
    sigma_rule: str | None
    conv: str
    n: int
    clipping: str = CLIPPING


def _clip(raw: float) -> tuple[float, bool]:
    value = min(1.0, max(0.0, raw))
    return value, value != raw


def _check_not_constant(name: str, x: torch.Tensor) -> None:
    if _hsic.is_constant(x):
        raise SplinescopeError(
            f"{name}: constant features (zero variance in every feature): CKA is undefined"
        )


def _resolve_sigma(name: str, x: torch.Tensor, sigma: float | None) -> tuple[float, str]:
    if sigma is None:
        med = _hsic.median_distance(x)
        if med <= 0.0:
            raise SplinescopeError(
                f"{name}: the median pairwise distance is 0 (more than half the pairs coincide); "
                "pass sigma explicitly"
            )
        return med, "median pairwise distance"
    if not (isinstance(sigma, int | float) and sigma > 0):
        raise SplinescopeError(f"sigma: expected a positive float or None, got {sigma!r}")
    return float(sigma), "given"


def _ratio(hxy: torch.Tensor, hxx: torch.Tensor, hyy: torch.Tensor, where: str) -> float:
    for name, h in (("x", hxx), ("y", hyy)):
        if not float(h) > 0.0:
            raise SplinescopeError(
                f"{name}: the HSIC of {name} with itself is {float(h):.3g} (not positive){where}; "
                "the representation is degenerate (constant, or too few distinct points)"
            )
    return float(hxy / torch.sqrt(hxx * hyy))


def _gram_terms(k: torch.Tensor, l_: torch.Tensor, estimator: str) -> tuple:
    """HSIC(K, L), HSIC(K, K), HSIC(L, L) of two Gram matrices ``[n, n]`` by ``estimator``."""
    fn = _hsic.hsic_biased_gram if estimator == "biased" else _hsic.hsic_unbiased_gram
    return fn(k, l_), fn(k, k), fn(l_, l_)


def _result(
    terms: tuple, kernel: str, estimator: str, sigmas: tuple, conv: str, n: int
) -> CKAResult:
    """The CKA result of the three HSIC ``terms`` (xy, xx, yy), clipped to [0, 1] as stated."""
    hxy, hxx, hyy = terms
    raw = _ratio(hxy, hxx, hyy, "")
    value, clipped = _clip(raw)
    sigma_x, sigma_y, sigma_rule = sigmas
    return CKAResult(
        value=value,
        raw_value=raw,
        clipped=clipped,
        hsic_xy=float(hxy),
        hsic_xx=float(hxx),
        hsic_yy=float(hyy),
        kernel=kernel,
        estimator=estimator,
        variant=f"{kernel} CKA, {ESTIMATOR_NAMES[estimator]}",
        sigma_x=sigma_x,
        sigma_y=sigma_y,
        sigma_rule=sigma_rule,
        conv=conv,
        n=n,
    )


def cka(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kernel: str = "linear",
    estimator: str = "biased",
    sigma: float | None = None,
    conv: str = "flatten",
) -> CKAResult:
    """CKA between features ``x`` ``[n, d1]`` and ``y`` ``[n, d2]`` of the same ``n`` points.

    Conv features ``[n, c, *spatial]`` are flattened (``conv="flatten"``) or averaged over
    positions (``conv="mean"``). ``kernel="rbf"`` uses ``exp(-|a-b|^2 / (2 sigma^2))`` with
    ``sigma`` (one value for both) or, when ``None``, the median pairwise distance of each
    input. ``estimator="unbiased"`` needs ``n >= 4``, ``"biased"`` ``n >= 2``. Linear CKA
    never forms an ``n x n`` Gram when ``n`` exceeds the feature widths.
    """
    choice("kernel", kernel, KERNELS)
    choice("estimator", estimator, ESTIMATORS)
    xf = features("x", x, conv)
    yf = features("y", y, conv)
    n = same_n("x", xf, "y", yf)
    min_n(n, 4 if estimator == "unbiased" else 2, f"CKA with the {estimator} estimator")
    _check_not_constant("x", xf)
    _check_not_constant("y", yf)
    yf = yf.to(xf.device)
    sx = sy = None
    rule = None
    if kernel == "linear":
        if xf.dtype != yf.dtype:
            common = torch.promote_types(xf.dtype, yf.dtype)
            xf, yf = xf.to(common), yf.to(common)
        hxy, hxx, hyy = _hsic.linear_hsic_terms(xf, yf, estimator)
    else:
        sx, rule = _resolve_sigma("x", xf, sigma)
        sy, _ = _resolve_sigma("y", yf, sigma)
        hxy, hxx, hyy = _gram_terms(_hsic.rbf_gram(xf, sx), _hsic.rbf_gram(yf, sy), estimator)
    return _result((hxy, hxx, hyy), kernel, estimator, (sx, sy, rule), conv, n)


@dataclass(frozen=True)
class MinibatchCKAResult:
    """Minibatch CKA: ``sum_b HSIC_1(K_b, L_b) / sqrt(sum_b HSIC_1(K_b, K_b) sum_b HSIC_1(L_b, L_b))``.

    Batches are weighted equally (as in Nguyen et al. 2021). ``value`` is clipped to [0, 1]
    (``raw_value`` before clipping); by Cauchy-Schwarz ``|raw_value| <= 1``.
    """

    value: float
    raw_value: float
    clipped: bool
    hsic_xy: float
    hsic_xx: float
    hsic_yy: float
    n_batches: int
    n_points: int
    kernel: str
    estimator: str
    variant: str
    sigma_rule: str | None
    conv: str
    clipping: str = CLIPPING


def batch_u_gram(
    name: str, x: torch.Tensor, kernel: str, sigma: float | None, conv: str, batch: int
) -> tuple[torch.Tensor, str | None]:
    """The U-centred float64 Gram of one batch of features (checked), and the sigma rule."""
    xf = features(name, x, conv)
    if xf.shape[0] < 4:
        raise SplinescopeError(
            f"{name}: batch {batch} has {xf.shape[0]} points; the unbiased HSIC needs at least 4 "
            "per batch (use a DataLoader with drop_last=True, or larger batches)"
        )
    if _hsic.is_constant(xf):
        raise SplinescopeError(
            f"{name}: batch {batch} has constant features (zero variance in every feature)"
        )
    if kernel == "linear":
        return _hsic.u_centre(_hsic.linear_gram(_hsic.centred(xf))), None
    s, rule = _resolve_sigma(name, xf, sigma)
    return _hsic.u_centre(_hsic.rbf_gram(xf, s)), rule + " (per batch)" if sigma is None else rule


def minibatch_cka(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    kernel: str = "linear",
    sigma: float | None = None,
    conv: str = "flatten",
) -> MinibatchCKAResult:
    """Minibatch CKA streamed over ``(x_batch [b, d1], y_batch [b, d2])`` pairs.

    Memory is one batch's Grams (``b x b``), independent of the total number of points. Every
    batch needs ``b >= 4`` points and non-constant features. With ``kernel="rbf"`` and
    ``sigma=None`` each batch uses its own median pairwise distance.
    """
    choice("kernel", kernel, KERNELS)
    choice("conv", conv, ("flatten", "mean"))
    acc: torch.Tensor | None = None
    n_batches = n_points = 0
    rule = None
    for b, pair in enumerate(batches):
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise SplinescopeError(f"batches: item {b} is not an (x_batch, y_batch) pair")
        xb, yb = pair
        ku, rule = batch_u_gram("x_batch", xb, kernel, sigma, conv, b)
        lu, _ = batch_u_gram("y_batch", yb, kernel, sigma, conv, b)
        if ku.shape != lu.shape:
            raise SplinescopeError(
                f"batch {b}: x_batch has {ku.shape[0]} rows but y_batch has {lu.shape[0]}"
            )
        lu = lu.to(ku.device)
        nb = ku.shape[0]
        scale = 1.0 / (nb * (nb - 3))
        terms = torch.stack([(ku * lu).sum(), (ku * ku).sum(), (lu * lu).sum()]) * scale
        acc = terms if acc is None else acc + terms
        n_batches += 1
        n_points += nb
    if acc is None:
        raise SplinescopeError("batches: the iterable yielded no batch")
    hxy, hxx, hyy = acc / n_batches
    raw = _ratio(hxy, hxx, hyy, f" summed over {n_batches} batches")
    value, clipped = _clip(raw)
    return MinibatchCKAResult(
        value=value,
        raw_value=raw,
        clipped=clipped,
        hsic_xy=float(hxy),
        hsic_xx=float(hxx),
        hsic_yy=float(hyy),
        n_batches=n_batches,
        n_points=n_points,
        kernel=kernel,
        estimator="unbiased",
        variant=f"{kernel} {MINIBATCH_NAME}",
        sigma_rule=rule,
        conv=conv,
    )


def feature_gram(x: torch.Tensor, *, conv: str = "flatten") -> torch.Tensor:
    """The linear Gram ``X_c X_c^T`` (float64 ``[n, n]``) of features ``x`` ``[n, d]`` (or
    ``[n, c, *spatial]``, flattened or position-mean by ``conv``), centred over the points.

    :func:`gram_cka` of two such Grams is the linear :func:`cka` of the features; keeping a
    Gram instead of the features costs ``n^2`` numbers whatever the width.
    """
    xf = features("x", x, conv).to(torch.float64)
    return _hsic.linear_gram(_hsic.centred(xf))


def gram_cka(
    k: torch.Tensor, l_: torch.Tensor, *, estimator: str = "unbiased", kernel: str = "linear"
) -> CKAResult:
    """CKA from two Gram matrices ``k``, ``l_`` ``[n, n]`` of the same ``n`` points.

    ``kernel`` only names the kernel the Grams were made with (in ``variant``). The biased
    estimator centres the Grams (``HKH``); the unbiased one needs ``n >= 4``.
    """
    choice("estimator", estimator, ESTIMATORS)
    choice("kernel", kernel, KERNELS)
    grams = []
    for name, g in (("k", k), ("l_", l_)):
        g = as_tensor(name, g)
        if g.ndim != 2 or g.shape[0] != g.shape[1]:
            raise SplinescopeError(f"{name}: expected a square Gram [n, n], got {tuple(g.shape)}")
        grams.append(g.to(torch.float64))
    kk, ll = grams
    n = same_n("k", kk, "l_", ll)
    min_n(n, 4 if estimator == "unbiased" else 2, f"CKA with the {estimator} estimator")
    terms = _gram_terms(kk, ll.to(kk.device), estimator)
    return _result(terms, kernel, estimator, (None, None, None), "gram", n)
