"""Curvature of a model's loss: top-k eigenvalues, trace, spectral density, and a summary.

Each function builds a :class:`~splinescope.landscape.operators.CurvatureOperator` (Hessian by
default, ``curvature="ggn"`` for the generalized Gauss-Newton matrix) over ``data`` and runs
the matching algorithm on it. They share these keyword arguments:

- ``params``: names of parameters or modules to restrict to (default: all trainable),
- ``curvature``: ``"hessian"`` or ``"ggn"``,
- ``batch_size``: micro-batch size (products are summed exactly over micro-batches),
- ``bn_mode``: ``"eval"`` (default) or ``"train"`` (single batch only),
- ``reduction``: ``"mean"`` (``loss_fn`` averages; default) or ``"sum"``,
- ``seed``: seeds a private generator for the random vectors (the global RNG is untouched).

Nothing about the model changes: ``.grad`` fields, modes, parameters, buffers and the global
RNG states (torch, CUDA, numpy, python) are as they were on return, also on error.

Example::

    >>> res = hessian_eigenvalues(model, nn.CrossEntropyLoss(), (x, y), k=5)
    >>> res.eigenvalues, res.residual_norms, res.converged, res.n_hvp
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.landscape._state import preserved_rng
from splinescope.landscape.density import DensityResult, spectral_density
from splinescope.landscape.lanczos import EigenResult, Which, lanczos_eigenvalues
from splinescope.landscape.operators import CurvatureOperator, LossFn
from splinescope.landscape.trace import TraceResult, estimate_trace

__all__ = [
    "HessianSummary",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_summary",
    "hessian_trace",
]

Curvature = Literal["hessian", "ggn"]


def _operator(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    params: Sequence[str] | None,
    curvature: Curvature,
    batch_size: int | None,
    bn_mode: Literal["eval", "train"],
    reduction: Literal["mean", "sum"],
) -> CurvatureOperator:
    return CurvatureOperator(
        model,
        loss_fn,
        data,
        params=params,
        curvature=curvature,
        batch_size=batch_size,
        bn_mode=bn_mode,
        reduction=reduction,
    )


def hessian_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    k: int = 5,
    which: Which = "largest",
    tol: float = 1e-4,
    return_vectors: bool = False,
    *,
    max_iter: int | None = None,
    params: Sequence[str] | None = None,
    curvature: Curvature = "hessian",
    batch_size: int | None = None,
    bn_mode: Literal["eval", "train"] = "eval",
    reduction: Literal["mean", "sum"] = "mean",
    seed: int = 0,
) -> EigenResult:
    """The ``k`` extreme eigenvalues of the loss Hessian (or GGN), by Lanczos.

    ``which``: ``"largest"`` (algebraic, descending), ``"smallest"`` (algebraic, ascending) or
    ``"magnitude"`` (by ``|lambda|``, descending). Lanczos with full re-orthogonalisation runs
    until every wanted Ritz pair has ``||H y - theta y|| <= tol * max(|theta|, 1e-2 |theta|_max)``
    or ``max_iter`` products (default ``min(n, max(200, 20 k))``) are spent; ``converged`` says
    which met the test. ``vectors`` (``(k, n)`` flattened in ``named_parameters`` order) with
    ``return_vectors=True``.

    Limitation (of any single-vector Krylov method): an eigenvalue with exact multiplicity m > 1
    is found once, and its copies only after rounding has introduced them.
    """
    with preserved_rng():
        op = _operator(model, loss_fn, data, params, curvature, batch_size, bn_mode, reduction)
        steps = min(op.n, max_iter if max_iter is not None else max(200, 20 * k))
        return lanczos_eigenvalues(
            op.matvec,
            op.n,
            k,
            which,
            tol,
            max_steps=steps,
            return_vectors=return_vectors,
            seed=seed,
            device=op.device,
            dtype=op.dtype,
        )


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    method: Literal["stratified", "hutch++", "hutchinson"] = "stratified",
    rtol: float = 1e-2,
    max_hvp: int = 300,
    min_samples: int = 10,
    n_sketch: int | None = None,
    sketch: Literal["lanczos", "random"] = "lanczos",
    blocks: Literal["module", "tensor", "none"] = "module",
    params: Sequence[str] | None = None,
    curvature: Curvature = "hessian",
    batch_size: int | None = None,
    bn_mode: Literal["eval", "train"] = "eval",
    reduction: Literal["mean", "sum"] = "mean",
    seed: int = 0,
) -> TraceResult:
    """``tr(H)`` with a standard error; stops when ``SE / |trace| <= rtol``.

    See :mod:`splinescope.landscape.trace` for the variants. The default ``"stratified"``: a
    Lanczos control variate plus Rademacher probes one parameter block at a time (``blocks``:
    the parameters of one module, one tensor, or all in one block), at most ``max_hvp // 2``
    blocks (2 probes each; consecutive modules merged beyond). Measured on the benchmark MLP
    and CNN (``benchmarks/bench_hessian.py``): about 5x lower error than Hutchinson at 30
    products.
    ``"hutch++"`` (``sketch="lanczos"``: the exact part from ``n_sketch`` Lanczos steps;
    ``"random"``: classical Hutch++) and ``"hutchinson"`` stay selectable. ``max_hvp`` caps the
    products (``converged`` is ``False`` if the cap stopped it).
    """
    with preserved_rng():
        op = _operator(model, loss_fn, data, params, curvature, batch_size, bn_mode, reduction)
        return estimate_trace(
            op.matvec,
            op.n,
            method=method,
            rtol=rtol,
            max_hvp=max_hvp,
            min_samples=min_samples,
            n_sketch=n_sketch,
            sketch=sketch,
            blocks=parameter_blocks(op, blocks, max_hvp // 2) if method == "stratified" else None,
            seed=seed,
            device=op.device,
        )


def parameter_blocks(op: CurvatureOperator, how: str, max_blocks: int) -> list[int]:
    """Sizes of contiguous parameter blocks of ``op``'s flat vector: one per module
    (``"module"``: tensors whose names share the prefix before the last dot), one per tensor, or
    one (``"none"``); more than ``max_blocks`` are merged into ``max_blocks`` runs of
    consecutive blocks."""
    if how not in ("module", "tensor", "none"):
        raise SplinescopeError(f"blocks: expected 'module', 'tensor' or 'none', got {how!r}")
    sizes = [math.prod(shape) for shape in op.shapes]
    if how == "none":
        return [op.n]
    keys = op.names if how == "tensor" else [name.rpartition(".")[0] for name in op.names]
    groups: list[int] = []
    for i, size in enumerate(sizes):
        if i > 0 and keys[i] == keys[i - 1]:
            groups[-1] += size
        else:
            groups.append(size)
    count = max(1, max_blocks)
    if len(groups) <= count:
        return groups
    edges = [round(j * len(groups) / count) for j in range(count + 1)]
    return [sum(groups[edges[j] : edges[j + 1]]) for j in range(count)]


def hessian_density(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    n_starts: int = 4,
    n_steps: int = 60,
    sigma: float | None = None,
    bandwidth: float = 0.01,
    n_grid: int = 1000,
    resolve_tol: float = 1e-2,
    gap: float = 0.1,
    params: Sequence[str] | None = None,
    curvature: Curvature = "hessian",
    batch_size: int | None = None,
    bn_mode: Literal["eval", "train"] = "eval",
    reduction: Literal["mean", "sum"] = "mean",
    seed: int = 0,
) -> DensityResult:
    """Spectral density of the loss Hessian (or GGN) by stochastic Lanczos quadrature.

    ``n_starts`` runs of ``n_steps`` Lanczos steps each; Gaussian smoothing of width ``sigma``
    (default ``bandwidth`` x the spectrum's width) on ``n_grid`` points; outliers separated
    from the bulk and their count. See :mod:`splinescope.landscape.density` for the rules.
    """
    with preserved_rng():
        op = _operator(model, loss_fn, data, params, curvature, batch_size, bn_mode, reduction)
        return spectral_density(
            op.matvec,
            op.n,
            n_starts=n_starts,
            n_steps=n_steps,
            sigma=sigma,
            bandwidth=bandwidth,
            n_grid=n_grid,
            resolve_tol=resolve_tol,
            gap=gap,
            seed=seed,
            device=op.device,
            dtype=op.dtype,
        )


@dataclass(frozen=True)
class HessianSummary:
    """Top-k eigenvalues, trace and spectral density of one curvature operator.

    Attributes:
        loss: the loss on the data (mean over points).
        eigen: Lanczos top-k (descending eigenvalues, residual norms, converged flags).
        trace: stratified trace (module blocks) with its standard error.
        density: SLQ spectral density with the outliers separated from the bulk.
        n_hvp: Hessian-vector products used by all three.
    """

    loss: float
    eigen: EigenResult
    trace: TraceResult
    density: DensityResult
    n_hvp: int


def hessian_summary(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    k: int = 5,
    tol: float = 1e-3,
    trace_rtol: float = 2e-2,
    trace_max_hvp: int = 100,
    n_starts: int = 2,
    n_steps: int = 40,
    n_grid: int = 200,
    params: Sequence[str] | None = None,
    curvature: Curvature = "hessian",
    batch_size: int | None = None,
    bn_mode: Literal["eval", "train"] = "eval",
    seed: int = 0,
) -> HessianSummary:
    """Top-k eigenvalues, trace and density of one operator (the data is read once), as a
    frozen :class:`HessianSummary`. The model and global RNG are left as they were."""
    with preserved_rng():
        op = _operator(model, loss_fn, data, params, curvature, batch_size, bn_mode, "mean")
        eig = lanczos_eigenvalues(
            op.matvec,
            op.n,
            k,
            "largest",
            tol,
            max_steps=min(op.n, max(200, 20 * k)),
            seed=seed,
            device=op.device,
            dtype=op.dtype,
        )
        tr = estimate_trace(
            op.matvec,
            op.n,
            method="stratified",
            rtol=trace_rtol,
            max_hvp=trace_max_hvp,
            blocks=parameter_blocks(op, "module", trace_max_hvp // 2),
            seed=seed + 1,
            device=op.device,
        )
        dens = spectral_density(
            op.matvec,
            op.n,
            n_starts=n_starts,
            n_steps=n_steps,
            n_grid=n_grid,
            seed=seed + 2,
            device=op.device,
            dtype=op.dtype,
        )
        return HessianSummary(op.loss(), eig, tr, dens, int(op.n_products))
