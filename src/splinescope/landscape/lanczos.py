"""Lanczos with full re-orthogonalisation, for any symmetric operator given as a matvec.

Every new vector is orthogonalised against the whole basis by classical Gram-Schmidt, with a
second pass when the first one cancelled more than a factor 1/sqrt(2) of its norm ("twice is
enough", DGKS), so Ritz values do not repeat ("ghosts") and the residual estimate
``|beta_m * s_m|`` is the true residual ``||A y - theta y||`` up to rounding. The basis is kept
in the vectors' dtype (float32 for a float32 model: its products carry float32 rounding anyway,
and the re-orthogonalisation, which is memory-bound, reads half as much); the tridiagonal is
float64. Memory: ``itemsize * n * steps`` bytes for the basis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from splinescope.errors import SplinescopeError

__all__ = ["EigenResult", "LanczosRun", "lanczos", "lanczos_eigenvalues", "ritz"]

Matvec = Callable[[Tensor], Tensor]
Which = Literal["largest", "smallest", "magnitude"]

# A new Lanczos vector whose norm after re-orthogonalisation is below this fraction of the
# product's norm is rounding noise: the Krylov space is invariant, and the run restarts with a
# fresh random vector orthogonal to the basis (beta = 0 in T).
_BREAKDOWN = 1e-6


@dataclass(frozen=True)
class LanczosRun:
    """The tridiagonal ``T = tridiag(beta, alpha, beta)`` of one run and its basis."""

    alpha: Tensor  # (m,) float64
    beta: Tensor  # (m,) float64; beta[j] couples steps j and j+1, beta[-1] is the residual norm
    basis: Tensor  # (m, n) in the start vector's dtype, orthonormal rows
    n_matvec: int


@dataclass(frozen=True)
class EigenResult:
    """Extreme eigenvalues of a symmetric operator, from Lanczos.

    Attributes:
        eigenvalues: ``(k,)`` float64, ordered as asked (``largest``/``magnitude``: descending
            by value / by absolute value; ``smallest``: ascending).
        residual_norms: ``(k,)`` ``||A y - theta y||`` of each unit Ritz vector ``y`` (the
            Lanczos estimate ``|beta_m s_m|``; exact up to rounding with full
            re-orthogonalisation). An eigenvalue of ``A`` lies within this of each value.
        converged: ``(k,)`` bool, ``residual <= tol * max(|theta|, 1e-2 * |theta|_max)``.
        n_hvp: operator products used (one per Lanczos step).
        n_steps: Lanczos steps (the Krylov dimension).
        which, tol: as asked.
        vectors: ``(k, n)`` unit Ritz vectors in the basis's dtype, or ``None``.
    """

    eigenvalues: Tensor
    residual_norms: Tensor
    converged: Tensor
    n_hvp: int
    n_steps: int
    which: str
    tol: float
    vectors: Tensor | None = None
    method: str = "lanczos, full re-orthogonalisation (CGS with DGKS second pass)"

    @property
    def all_converged(self) -> bool:
        return bool(self.converged.all())


def ritz(alpha: Tensor, beta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Ritz values (ascending), eigenvectors of ``T`` and residual estimates of a run."""
    m = alpha.numel()
    t = torch.diag(alpha)
    if m > 1:
        off = beta[: m - 1]
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    theta, s = torch.linalg.eigh(t)
    residuals = (beta[m - 1] * s[m - 1, :]).abs()
    return theta, s, residuals


def _wanted(theta: Tensor, k: int, which: Which) -> Tensor:
    if which == "largest":
        return torch.argsort(theta, descending=True)[:k]
    if which == "smallest":
        return torch.argsort(theta)[:k]
    return torch.argsort(theta.abs(), descending=True)[:k]


def _converged(theta: Tensor, residuals: Tensor, tol: float) -> Tensor:
    scale = torch.clamp(theta.abs(), min=1e-2 * float(theta.abs().max()))
    return residuals <= tol * scale


def lanczos(
    matvec: Matvec,
    start: Tensor,
    max_steps: int,
    *,
    generator: torch.Generator,
    stop: Callable[[Tensor, Tensor], bool] | None = None,
) -> LanczosRun:
    """Run Lanczos from ``start`` for at most ``max_steps`` steps (or until ``stop(alpha, beta)``).

    ``start`` is a vector of length ``n``; ``matvec`` takes and returns vectors of its dtype,
    which is also the basis's. ``generator`` draws a fresh start if the Krylov space becomes
    invariant before the end.
    """
    n = start.numel()
    max_steps = min(max_steps, n)
    device, dtype = start.device, start.dtype
    capacity = min(max_steps, 32)
    basis = torch.empty(capacity, n, dtype=dtype, device=device)
    alpha = torch.zeros(max_steps, dtype=torch.float64)
    beta = torch.zeros(max_steps, dtype=torch.float64)
    q = start / torch.linalg.vector_norm(start)
    steps = 0
    for j in range(max_steps):
        if j == capacity:
            capacity = min(2 * capacity, max_steps)
            grown = torch.empty(capacity, n, dtype=dtype, device=device)
            grown[:j] = basis[:j]
            basis = grown
        basis[j] = q
        w = matvec(q)
        steps = j + 1
        a = torch.dot(q, w)
        alpha[j] = a.double()
        size = float(torch.linalg.vector_norm(w))
        w = w - a * q
        if j > 0:
            w = w - beta[j - 1].to(dtype) * basis[j - 1]
        w, b = _orthogonalise(w, basis[: j + 1])
        if steps == n:
            beta[j] = 0.0
            break
        if b <= _BREAKDOWN * max(size, 1e-300):
            # Invariant subspace: restart orthogonally (T decouples, beta = 0).
            beta[j] = 0.0
            w = torch.randn(n, generator=generator, dtype=torch.float64).to(device, dtype)
            w, b = _orthogonalise(w, basis[: j + 1])
            q = w / b
        else:
            beta[j] = b
            q = w / b
        if stop is not None and stop(alpha[:steps], beta[:steps]):
            break
    return LanczosRun(alpha[:steps], beta[:steps], basis[:steps], steps)


def _orthogonalise(w: Tensor, basis: Tensor) -> tuple[Tensor, float]:
    """``w`` minus its projection on the rows of ``basis`` (CGS, DGKS second pass), and its norm."""
    before = float(torch.linalg.vector_norm(w))
    w = w - basis.T @ (basis @ w)
    after = float(torch.linalg.vector_norm(w))
    if after < 0.7071 * before:
        w = w - basis.T @ (basis @ w)
        after = float(torch.linalg.vector_norm(w))
    return w, after


def lanczos_eigenvalues(
    matvec: Matvec,
    n: int,
    k: int = 5,
    which: Which = "largest",
    tol: float = 1e-4,
    *,
    max_steps: int | None = None,
    return_vectors: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> EigenResult:
    """The ``k`` extreme eigenvalues of the symmetric ``n x n`` operator ``matvec``.

    Stops as soon as all ``k`` wanted Ritz values meet the residual test, or after
    ``max_steps`` products (default ``min(n, max(200, 20 k))``). The start vector is Gaussian,
    from a private generator seeded with ``seed`` (the global RNG is not used). ``matvec``
    receives and returns vectors of ``dtype`` (the basis's dtype too).
    """
    _check_k(k, n)
    if which not in ("largest", "smallest", "magnitude"):
        raise SplinescopeError(
            f"which: expected 'largest', 'smallest' or 'magnitude', got {which!r}"
        )
    if not (tol > 0):
        raise SplinescopeError(f"tol: expected a positive float, got {tol!r}")
    if max_steps is None:
        max_steps = max(200, 20 * k)
    if max_steps < k:
        raise SplinescopeError(f"max_iter: {max_steps} < k={k}; Lanczos needs at least k steps")
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(n, generator=generator, dtype=torch.float64).to(device, dtype)

    def stop(alpha: Tensor, beta: Tensor) -> bool:
        if alpha.numel() < k:
            return False
        theta, _, residuals = ritz(alpha, beta)
        idx = _wanted(theta, k, which)
        return bool(_converged(theta, residuals, tol)[idx].all())

    run = lanczos(matvec, start, max_steps, generator=generator, stop=stop)
    theta, s, residuals = ritz(run.alpha, run.beta)
    idx = _wanted(theta, k, which)
    vectors = None
    if return_vectors:
        vectors = s[:, idx].to(run.basis.device, run.basis.dtype).T @ run.basis
    return EigenResult(
        eigenvalues=theta[idx].clone(),
        residual_norms=residuals[idx].clone(),
        converged=_converged(theta, residuals, tol)[idx].clone(),
        n_hvp=run.n_matvec,
        n_steps=run.n_matvec,
        which=which,
        tol=tol,
        vectors=vectors,
    )


def _check_k(k: int, n: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise SplinescopeError(f"k: expected a positive int, got {k!r}")
    if k >= n:
        raise SplinescopeError(
            f"k: asked for {k} eigenvalues of a {n}-parameter Hessian; k must be < {n} "
            "(for all of them, build the dense Hessian with torch.func.hessian)"
        )
