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

``method="stratified"``: the Lanczos sketch as a control variate, ``A_hat = Q T Q^T``, and the
rest ``tr(A - A_hat)`` taken block by block over contiguous coordinate blocks (for a network:
its layers). A probe of block ``b`` is a Rademacher vector ``u`` zero outside ``b``, one product,
sample ``u^T A u - (Q^T u)^T T (Q^T u)``; a sweep probes every block once. The estimate
``tr(T) + sum_b mean_b`` is unbiased given ``Q`` for any matrix (the allocation is fixed and the
sketch's stopping rule reads only the Lanczos run); its variance is ``2 sum_b ||offdiag((A -
A_hat)_bb)||_F^2 / n_b``: the products of different blocks, which carry most of the Rademacher
variance of a network's Hessian (its cross-layer terms), drop out. The standard error is
``sqrt(sum_b var_b / n_b)`` with Welch-Satterthwaite degrees of freedom. When the blocks do not
decouple (a matrix without block structure), it costs up to ``n_blocks`` times the
variance of plain Hutchinson per product; one block is Hutch++ in control-variate form.

Budget rule (``"stratified"``): the probes keep ``min(max(3, ceil(min_samples / n_blocks)),
max_hvp // n_blocks)`` sweeps (at least 2: a variance per block; fewer than ``2 n_blocks``
products is an error), and the sketch may take only the rest (at most 50 steps, fewer once the
exact part settles). So at a small budget the sketch shrinks to nothing before a block loses
its probes, and the estimator becomes per-block Hutchinson; :func:`hessian_trace` merges
modules only when the budget cannot pay 2 probes for each (at most ``max_hvp // 2`` blocks).
Both are fixed by the budget and the block sizes, never by the probes, so the estimate stays
unbiased given the sketch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from splinescope.errors import SplinescopeError
from splinescope.landscape.lanczos import lanczos

__all__ = ["TraceResult", "estimate_trace"]

# Sweeps (one probe per block each) before the stratified stopping rule may fire; the sketch
# leaves room for them, or for as many as the budget holds (at least 2: a variance per block).
_MIN_SWEEPS = 3


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
        dof: degrees of freedom of the standard error (``n_samples - 1``, or Welch-Satterthwaite
            over the blocks for ``"stratified"``).
        blocks: the block sizes (``"stratified"``; empty otherwise).
        sample_blocks: ``(n_samples,)`` the block index of each sample (``"stratified"``).
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
    dof: float = math.nan
    blocks: tuple[int, ...] = ()
    sample_blocks: Tensor | None = None

    def confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """A Student-t interval: ``dof`` degrees of freedom (Welch-Satterthwaite over the blocks
        for ``"stratified"``), else ``n_samples - 1``."""
        from scipy.stats import t as student_t

        if self.n_samples < 2 or self.standard_error == 0.0:
            return (self.trace, self.trace)
        dof = self.dof if math.isfinite(self.dof) else self.n_samples - 1
        half = float(student_t.ppf(0.5 + level / 2, dof)) * self.standard_error
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
    blocks: Sequence[int] | None = None,
    settle: float = 1e-2,
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

    ``method="stratified"`` (see the module docstring) probes the contiguous coordinate
    ``blocks`` (sizes summing to ``n``; default one block) one at a time; ``n_sketch`` is then
    the most Lanczos steps (default: the sketch stops once the last two ``|alpha_j|`` are at
    most ``settle * |tr T|``, at most 50 steps and leaving room for the sweeps of the budget
    rule in the module docstring).
    """
    if method not in ("hutch++", "hutchinson", "stratified"):
        raise SplinescopeError(
            f"method: expected 'hutch++', 'hutchinson' or 'stratified', got {method!r}"
        )
    if not (rtol > 0):
        raise SplinescopeError(f"rtol: expected a positive float, got {rtol!r}")
    if min_samples < 2:
        raise SplinescopeError(
            f"min_samples: need at least 2 for a standard error, got {min_samples}"
        )
    if sketch not in ("lanczos", "random"):
        raise SplinescopeError(f"sketch: expected 'lanczos' or 'random', got {sketch!r}")
    if method == "stratified":
        if sketch != "lanczos":
            raise SplinescopeError(f"sketch: 'stratified' uses the Lanczos sketch, got {sketch!r}")
        sizes = [n] if blocks is None else [int(b) for b in blocks]
        if not sizes or min(sizes) < 1 or sum(sizes) != n:
            raise SplinescopeError(
                f"blocks: expected positive sizes summing to n={n}, got {list(sizes)} "
                f"(sum {sum(sizes)})"
            )
        if n_sketch is not None and n_sketch < 0:
            raise SplinescopeError(f"n_sketch: expected >= 0, got {n_sketch}")
        return _stratified(
            matvec,
            n,
            sizes,
            rtol=rtol,
            max_hvp=max_hvp,
            min_samples=min_samples,
            n_sketch=n_sketch,
            settle=settle,
            generator=torch.Generator().manual_seed(seed),
            device=device,
        )
    if blocks is not None:
        raise SplinescopeError(f"blocks: only method='stratified' uses blocks, not {method!r}")
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


def _name(method: str, n_sketch: int, sketch: str, n_blocks: int = 1) -> str:
    if method == "stratified":
        return (
            f"stratified: lanczos control variate of {n_sketch}, one rademacher probe per block "
            f"({n_blocks} blocks) per sweep, stop on relative SE"
        )
    if n_sketch == 0:
        return "hutchinson, rademacher, stop on relative SE"
    return (
        f"hutch++ ({sketch} sketch of {n_sketch}), rademacher deflated samples, stop on relative SE"
    )


def _lanczos_sketch(
    matvec: Callable[[Tensor], Tensor],
    start: Tensor,
    max_steps: int,
    generator: torch.Generator,
    settle: float,
):
    """Lanczos steps until the exact part settles: the last two ``|alpha_j| <= settle * |tr T|``.

    Once the Krylov space holds the outlying eigenvectors, each new Lanczos vector lies in the
    bulk and its Rayleigh quotient ``alpha_j`` adds almost nothing to ``tr(T)``. The rule reads
    only the Lanczos run (never the probes), so the estimate stays unbiased given the sketch.
    """

    def settled(alpha: Tensor, beta: Tensor) -> bool:
        m = alpha.numel()
        if m < 3:
            return False
        scale = settle * abs(float(alpha.sum()))
        return bool((alpha[-2:].abs() <= scale).all())

    return lanczos(matvec, start, max_steps, generator=generator, stop=settled)


def _stratified(
    matvec: Callable[[Tensor], Tensor],
    n: int,
    blocks: list[int],
    *,
    rtol: float,
    max_hvp: int,
    min_samples: int,
    n_sketch: int | None,
    settle: float,
    generator: torch.Generator,
    device: torch.device | str,
) -> TraceResult:
    n_blocks = len(blocks)
    if max_hvp < 2 * n_blocks:
        raise SplinescopeError(
            f"max_hvp: {max_hvp} products cannot pay for 2 probes in each of {n_blocks} blocks "
            f"({2 * n_blocks} probes); pass fewer blocks or a larger max_hvp"
        )
    min_sweeps = max(_MIN_SWEEPS, math.ceil(min_samples / n_blocks))
    reserved = min(min_sweeps, max_hvp // n_blocks) * n_blocks
    cap = min(max_hvp - reserved, n, 50 if n_sketch is None else int(n_sketch))
    q = torch.zeros(n, 0, dtype=torch.float64, device=device)
    t = torch.zeros(0, 0, dtype=torch.float64)
    n_hvp = 0
    if cap > 0:
        start = torch.randn(n, generator=generator, dtype=torch.float64).to(device)
        if n_sketch is None:
            run = _lanczos_sketch(matvec, start, cap, generator, settle)
        else:
            run = lanczos(matvec, start, cap, generator=generator)
        q = run.basis.T.to(torch.float64)  # (n, k)
        k = run.alpha.numel()
        t = torch.diag(run.alpha)
        if k > 1:
            off = run.beta[: k - 1]
            t = t + torch.diag(off, 1) + torch.diag(off, -1)
        n_hvp += run.n_matvec
    k = q.shape[1]
    t = t.to(device)
    exact = float(t.trace()) if k else 0.0
    if k == n:
        return TraceResult(
            exact,
            0.0,
            0.0,
            n_hvp,
            k,
            0,
            True,
            exact,
            torch.zeros(0, dtype=torch.float64),
            _name("stratified", k, "lanczos", n_blocks),
            dof=math.inf,
            blocks=tuple(blocks),
            sample_blocks=torch.zeros(0, dtype=torch.long),
        )
    bounds = [0]
    for size in blocks:
        bounds.append(bounds[-1] + size)
    per_block: list[list[float]] = [[] for _ in blocks]
    samples: list[float] = []
    which: list[int] = []
    trace = se = rel = dof = math.nan
    converged = False
    while n_hvp < max_hvp:
        for b in range(n_blocks):
            if n_hvp >= max_hvp:
                break
            lo, hi = bounds[b], bounds[b + 1]
            g = _rademacher(hi - lo, 1, generator)[:, 0].to(device)
            u = torch.zeros(n, dtype=torch.float64, device=device)
            u[lo:hi] = g
            x = float(torch.dot(g, matvec(u)[lo:hi]))
            if k:
                c = q[lo:hi].T @ g  # (k,)
                x -= float(c @ (t @ c))
            n_hvp += 1
            per_block[b].append(x)
            samples.append(x)
            which.append(b)
        if min(len(s) for s in per_block) < 2:
            continue
        trace, se, dof = _stratified_stats(exact, per_block)
        rel = se / abs(trace) if trace != 0 else math.inf
        if min(len(s) for s in per_block) >= min_sweeps and rel <= rtol:
            converged = True
            break
    return TraceResult(
        trace=trace,
        standard_error=se,
        relative_standard_error=rel,
        n_hvp=n_hvp,
        n_sketch=k,
        n_samples=len(samples),
        converged=converged,
        exact_part=exact,
        samples=torch.tensor(samples, dtype=torch.float64),
        method=_name("stratified", k, "lanczos", n_blocks),
        dof=dof,
        blocks=tuple(blocks),
        sample_blocks=torch.tensor(which, dtype=torch.long),
    )


def _stratified_stats(exact: float, per_block: list[list[float]]) -> tuple[float, float, float]:
    """Estimate, standard error and Welch-Satterthwaite degrees of freedom of the block means."""
    trace, var, denom = exact, 0.0, 0.0
    for s in per_block:
        x = torch.tensor(s, dtype=torch.float64)
        v = float(x.var(unbiased=True)) / len(s)
        trace += float(x.mean())
        var += v
        denom += v * v / (len(s) - 1)
    dof = var * var / denom if denom > 0 else math.inf
    return trace, math.sqrt(var), dof
