"""Points on a classifier's decision boundary, found by bisection along segments.

For a source point ``x0`` predicted as class ``a`` (argmax of the logits) and an end point
``x1`` predicted as ``b != a``, the segment ``x(t) = x0 + t·(x1 − x0)``, ``t ∈ [0, 1]``, leaves
the region where ``a`` is predicted. The *gap* at ``x`` is ``g(x) = f_a(x) − max_{k≠a} f_k(x)``
(``g > 0`` where ``a`` is predicted, ``g = 0`` on the decision boundary of class ``a``).
Bisection keeps a bracket ``[lo, hi]`` with ``g(lo) > 0 >= g(hi)`` and stops when the gap at the
midpoint satisfies ``|g| <= tol`` (a logit tie: ``a`` ties with the best other class, which is
``class_across``; it is ``b`` unless a third class wins on the way). With ``n_scan > 1`` the
bracket is first narrowed to the first of ``n_scan`` equal sub-segments whose end is not
predicted ``a``, so the point found is the first crossing at that resolution.

Local complexity at the boundary points is then ``local_complexity(model, result.points, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.nn.guard import measuring

VARIANT = (
    "bisection on t along x0 + t(x1 - x0) keeping argmax = a at lo and != a at hi; stop at "
    "|f_a - max_{k!=a} f_k| <= tol at the midpoint (a = class predicted at x0)"
)


@dataclass(frozen=True)
class BoundaryPoints:
    """Decision-boundary points, one per source point that has a differently predicted partner.

    Attributes:
        points: ``[M, *input_shape]`` boundary points (model dtype, on CPU).
        source: int64 ``[M]``: index of each point's source in ``x``.
        partner: int64 ``[M]``: index of the end point in ``pool`` (``toward="nearest"``) or in
            ``toward`` (a tensor of targets: then ``partner == source``).
        t: float64 ``[M]``: position on the segment (0 = source, 1 = end point).
        segment_length: float64 ``[M]``: ``‖x1 − x0‖`` (Euclidean, input units); the boundary
            point lies at distance ``t · segment_length`` from its source.
        gap: float64 ``[M]``: ``f_a − max_{k≠a} f_k`` at the boundary point (logit units).
        class_from, class_to, class_across: int64 ``[M]``: class predicted at the source, at the
            end point, and the best other class at the boundary point.
        steps: int64 ``[M]``: bisection steps (forward passes after the scan) per point.
        converged: bool ``[M]``: ``|gap| <= tol`` reached within ``max_iter`` steps (otherwise
            the midpoint of the final bracket is returned, with its gap).
        skipped: ``(index in x, reason)`` for every source without a boundary point.
        toward: ``"nearest"`` or ``"targets"``. tol, max_iter, n_scan: as called.
        variant: the rule in words.
    """

    points: torch.Tensor
    source: torch.Tensor
    partner: torch.Tensor
    t: torch.Tensor
    segment_length: torch.Tensor
    gap: torch.Tensor
    class_from: torch.Tensor
    class_to: torch.Tensor
    class_across: torch.Tensor
    steps: torch.Tensor
    converged: torch.Tensor
    skipped: tuple[tuple[int, str], ...]
    toward: str
    tol: float
    max_iter: int
    n_scan: int
    variant: str = VARIANT

    def __len__(self) -> int:
        return int(self.source.numel())

    @property
    def distance(self) -> torch.Tensor:
        """float64 ``[M]``: distance from each source to its boundary point (input units)."""
        return self.t * self.segment_length


def _as_batch(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise SplinescopeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.dim() < 2 or value.shape[0] == 0:
        raise SplinescopeError(
            f"{name}: expected a non-empty batch [N, *input_shape], got shape {tuple(value.shape)}"
        )
    if not value.is_floating_point() or not torch.isfinite(value).all():
        raise SplinescopeError(f"{name}: expected finite floating-point values")
    return value.detach()


def _reference(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    ref = next((p for p in [*model.parameters(), *model.buffers()] if p.is_floating_point()), None)
    if ref is None:
        return torch.device("cpu"), torch.float32
    return ref.device, ref.dtype


def _logits(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``[N, C]`` logits, in batches of ``batch_size`` points."""
    out = [model(x[i : i + batch_size]).flatten(1) for i in range(0, x.shape[0], batch_size)]
    logits = torch.cat(out)
    if logits.shape[1] < 2:
        raise SplinescopeError(
            f"model: needs at least 2 outputs (class logits) per point, got {logits.shape[1]}"
        )
    return logits


def _gap(logits: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``f_a − max_{k≠a} f_k`` ``[N]`` and the best other class ``[N]`` for classes ``cls``."""
    own = logits.gather(1, cls[:, None])[:, 0]
    others = logits.scatter(1, cls[:, None], float("-inf"))
    best, across = others.max(dim=1)
    return own - best, across


def _nearest_partners(
    x: torch.Tensor, pred: torch.Tensor, pool: torch.Tensor, pool_pred: torch.Tensor, chunk: int
) -> torch.Tensor:
    """Index ``[N]`` of the nearest pool point (Euclidean) predicted differently; −1 if none."""
    flat_pool = pool.flatten(1)
    partner = torch.full((x.shape[0],), -1, dtype=torch.int64, device=x.device)
    for i in range(0, x.shape[0], chunk):
        d = torch.cdist(x[i : i + chunk].flatten(1), flat_pool)
        d = d.masked_fill(pool_pred[None, :] == pred[i : i + chunk, None], float("inf"))
        value, index = d.min(dim=1)
        partner[i : i + chunk] = torch.where(torch.isfinite(value), index, -1)
    return partner


def _check_options(tol: float, max_iter: int, n_scan: int, batch_size: int) -> None:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
        raise SplinescopeError(f"tol: must be a number > 0, got {tol!r}")
    for name, value in (("max_iter", max_iter), ("n_scan", n_scan), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SplinescopeError(f"{name}: must be a positive integer, got {value!r}")


def _bisect(
    model: nn.Module,
    x0: torch.Tensor,
    x1: torch.Tensor,
    cls: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bisect ``[lo, hi]`` (``[B]``, float64) on one batch; returns t, gap, across, steps."""
    n = x0.shape[0]
    view = (-1, *([1] * (x0.dim() - 1)))
    delta = x1 - x0
    t = torch.empty(n, dtype=torch.float64, device=x0.device)
    gap = torch.empty_like(t)
    across = torch.zeros(n, dtype=torch.int64, device=x0.device)
    steps = torch.zeros(n, dtype=torch.int64, device=x0.device)
    active = torch.arange(n, device=x0.device)
    for _ in range(max_iter):
        mid = 0.5 * (lo[active] + hi[active])
        point = x0[active] + mid.to(x0.dtype).reshape(view) * delta[active]
        g, k = _gap(model(point).flatten(1), cls[active])
        g = g.to(torch.float64)
        t[active], gap[active], across[active] = mid, g, k
        steps[active] += 1
        done = g.abs() <= tol
        inside = g > 0
        lo[active] = torch.where(inside, mid, lo[active])
        hi[active] = torch.where(inside, hi[active], mid)
        active = active[~done]
        if active.numel() == 0:
            break
    return t, gap, across, steps


def decision_boundary_points(
    model: nn.Module,
    x: torch.Tensor,
    *,
    toward: str | torch.Tensor = "nearest",
    pool: torch.Tensor | None = None,
    tol: float = 1e-4,
    max_iter: int = 60,
    n_scan: int = 1,
    batch_size: int = 1024,
) -> BoundaryPoints:
    """Points on the decision boundary between each point of ``x`` and a differently predicted
    end point, by bisection to a logit tie within ``tol`` (see the module docstring).

    Args:
        model: a classifier ``[B, *input_shape] -> [B, C]`` (C >= 2); measured in eval mode
            without gradients and left as it was (modes, parameters, global RNG states).
        x: ``[N, *input_shape]`` source points (e.g. training points).
        toward: ``"nearest"`` — the end point is the nearest (Euclidean) point of ``pool``
            predicted as another class; or a tensor ``[N, *input_shape]`` of end points, one per
            source (e.g. adversarial examples).
        pool: ``[P, *input_shape]`` candidates for ``"nearest"`` (default: ``x`` itself).
        tol: logit tie tolerance (logit units), > 0.
        max_iter: most bisection steps per point.
        n_scan: equal sub-segments checked before bisecting (1: the whole segment).
        batch_size: points per forward pass.

    Returns:
        :class:`BoundaryPoints`; sources whose end point is predicted as their own class, or
        with no differently predicted point in ``pool``, are listed in ``skipped``.
    """
    x = _as_batch(x, "x")
    _check_options(tol, max_iter, n_scan, batch_size)
    device, dtype = _reference(model)
    x = x.to(device=device, dtype=dtype)
    with measuring(model):
        pred = _logits(model, x, batch_size).argmax(dim=1)
        if isinstance(toward, str):
            if toward != "nearest":
                raise SplinescopeError(
                    f"toward: must be 'nearest' or a tensor of end points, got {toward!r}"
                )
            candidates = x if pool is None else _as_batch(pool, "pool").to(device, dtype)
            if candidates.shape[1:] != x.shape[1:]:
                raise SplinescopeError(
                    f"pool: input shape {tuple(candidates.shape[1:])} differs from x's "
                    f"{tuple(x.shape[1:])}"
                )
            cand_pred = pred if pool is None else _logits(model, candidates, batch_size).argmax(1)
            partner = _nearest_partners(x, pred, candidates, cand_pred, batch_size)
            mode = "nearest"
        else:
            if pool is not None:
                raise SplinescopeError("pool: only used with toward='nearest'")
            candidates = _as_batch(toward, "toward").to(device, dtype)
            if candidates.shape != x.shape:
                raise SplinescopeError(
                    f"toward: expected one end point per source, shape {tuple(x.shape)}, "
                    f"got {tuple(candidates.shape)}"
                )
            cand_pred = _logits(model, candidates, batch_size).argmax(dim=1)
            partner = torch.where(cand_pred != pred, torch.arange(len(x), device=device), -1)
            mode = "targets"
        kept = torch.nonzero(partner >= 0).flatten()
        results = [
            _run_batch(model, x, candidates, pred, cand_pred, partner, idx, tol, max_iter, n_scan)
            for idx in kept.split(batch_size)
        ]
    skipped = _skip_reasons(partner, pred, mode)
    return _assemble(results, x, skipped, mode, tol, max_iter, n_scan)


def _run_batch(model, x, candidates, pred, cand_pred, partner, idx, tol, max_iter, n_scan):
    """Scan then bisect one batch of sources ``idx``; returns the per-point tensors."""
    x0, x1 = x[idx], candidates[partner[idx]]
    cls = pred[idx]
    n = idx.numel()
    lo = torch.zeros(n, dtype=torch.float64, device=x.device)
    hi = torch.ones(n, dtype=torch.float64, device=x.device)
    if n_scan > 1:
        found = torch.zeros(n, dtype=torch.bool, device=x.device)
        for j in range(1, n_scan):
            tj = j / n_scan
            point = x0 + tj * (x1 - x0)
            g, _ = _gap(model(point).flatten(1), cls)
            first = (g <= 0) & ~found
            hi = torch.where(first, torch.full_like(hi, tj), hi)
            found |= first
            lo = torch.where(~found, torch.full_like(lo, tj), lo)
    t, gap, across, steps = _bisect(model, x0, x1, cls, lo, hi, tol, max_iter)
    point = x0 + t.to(x0.dtype).reshape(-1, *([1] * (x0.dim() - 1))) * (x1 - x0)
    length = (x1 - x0).flatten(1).to(torch.float64).norm(dim=1)
    return {
        "points": point,
        "source": idx,
        "partner": partner[idx],
        "t": t,
        "segment_length": length,
        "gap": gap,
        "class_from": cls,
        "class_to": cand_pred[partner[idx]],
        "class_across": across,
        "steps": steps,
        "converged": gap.abs() <= tol,
    }


def _skip_reasons(partner: torch.Tensor, pred: torch.Tensor, mode: str) -> tuple:
    missing = torch.nonzero(partner < 0).flatten().tolist()
    if mode == "nearest":
        why = "no point of the pool is predicted as a class other than {}"
    else:
        why = "its end point is predicted as the same class ({})"
    return tuple((i, why.format(int(pred[i]))) for i in missing)


def _assemble(results, x, skipped, mode, tol, max_iter, n_scan) -> BoundaryPoints:
    def cat(key: str, empty: torch.Tensor) -> torch.Tensor:
        return torch.cat([r[key] for r in results]).cpu() if results else empty

    i64 = torch.zeros(0, dtype=torch.int64)
    f64 = torch.zeros(0, dtype=torch.float64)
    return BoundaryPoints(
        points=cat("points", x.new_zeros((0, *x.shape[1:])).cpu()),
        source=cat("source", i64),
        partner=cat("partner", i64),
        t=cat("t", f64),
        segment_length=cat("segment_length", f64),
        gap=cat("gap", f64),
        class_from=cat("class_from", i64),
        class_to=cat("class_to", i64),
        class_across=cat("class_across", i64),
        steps=cat("steps", i64),
        converged=cat("converged", torch.zeros(0, dtype=torch.bool)),
        skipped=skipped,
        toward=mode,
        tol=float(tol),
        max_iter=int(max_iter),
        n_scan=int(n_scan),
    )
