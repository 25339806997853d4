"""FGSM and PGD in l_inf and l_2, clamped to the data domain, and adversarial accuracy.

PGD follows Madry et al. (2018): from ``x + delta0`` repeat ``steps`` times

    x' <- x' + step_size * d(grad)        d = sign (l_inf) or grad / ||grad||_2 per sample (l_2)
    x' <- clamp(x + project_eps(x' - x), lo, hi)

where ``project_eps`` clips each coordinate to [-eps, eps] (l_inf) or rescales each sample's
perturbation to l_2 norm <= eps. Clamping to the data domain after the projection keeps the
perturbation inside the ball, because ``x`` itself lies in the domain. FGSM is the single step
``step_size = eps`` from ``delta0 = 0``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.nn.guard import measuring

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NORMS = ("linf", "l2")
ATTACKS = ("pgd", "fgsm")
_PGD_ARGS = {"eps", "step_size", "steps", "norm", "domain", "random_start", "seed", "loss_fn"}
_FGSM_ARGS = {"eps", "norm", "domain", "loss_fn"}


@contextmanager
def attacking(model: nn.Module) -> Iterator[None]:
    """The model in eval mode with gradients on (even inside ``no_grad``/``inference_mode``);
    modes and every global RNG restored on exit (:func:`splinescope.nn.guard.measuring`).

    Attacks differentiate only with respect to their input (``torch.autograd.grad``), so
    parameters' ``.grad`` and ``requires_grad`` are never touched, and in eval mode BatchNorm
    buffers do not move.
    """
    with measuring(model), torch.inference_mode(False), torch.enable_grad():
        yield


def _summed_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # A sum, not a mean: each sample's input gradient is then independent of the batch.
    return F.cross_entropy(logits, y, reduction="sum")


def _check_number(value: object, name: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SplinescopeError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise SplinescopeError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _check_int(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SplinescopeError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_domain(domain: object) -> tuple[float, float]:
    if not isinstance(domain, (tuple, list)) or len(domain) != 2:
        raise SplinescopeError(f"domain must be a (lo, hi) pair of floats, got {domain!r}")
    lo, hi = (
        float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        for v in domain
    )
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise SplinescopeError(
            f"domain must be a (lo, hi) pair of finite floats with lo < hi, got {domain!r}"
        )
    return lo, hi


@dataclass(frozen=True)
class _Plan:
    """Validated PGD arguments, with x, y and the start ``delta0`` on the model's device."""

    x: torch.Tensor
    y: torch.Tensor
    delta0: torch.Tensor
    eps: float
    step_size: float
    steps: int
    norm: str
    lo: float
    hi: float
    loss_fn: LossFn


def _plan(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "linf",
    domain: tuple[float, float],
    random_start: bool = True,
    seed: int = 0,
    loss_fn: LossFn | None = None,
) -> _Plan:
    if not isinstance(model, nn.Module):
        raise SplinescopeError(f"model must be an nn.Module, got {type(model).__name__}")
    if norm not in NORMS:
        raise SplinescopeError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise SplinescopeError("x must be a floating-point tensor [N, *input_shape]")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise SplinescopeError(
            f"y must be a label tensor [N] with N = {x.shape[0]} (x's first dim), got "
            f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}"
        )
    lo, hi = _check_domain(domain)
    if x.numel() and (x.min() < lo or x.max() > hi):
        raise SplinescopeError(
            f"x has values in [{float(x.min())}, {float(x.max())}], outside domain ({lo}, {hi}); "
            f"pass the data's domain (e.g. SplitData.domain)"
        )
    eps = _check_number(eps, "eps", positive=False)
    step_size = _check_number(step_size, "step_size", positive=True)
    _check_int(steps, "steps", 0)
    _check_int(seed, "seed", 0)
    if loss_fn is not None and not callable(loss_fn):
        raise SplinescopeError(f"loss_fn must be callable (logits, y) -> scalar, got {loss_fn!r}")
    reference = next(itertools.chain(model.parameters(), model.buffers()), None)
    device = reference.device if reference is not None else x.device
    x = x.detach().to(device)
    delta0 = _random_start(x, eps, norm, seed) if random_start else torch.zeros_like(x)
    return _Plan(
        x=x,
        y=y.detach().to(device, torch.int64),
        delta0=delta0,
        eps=eps,
        step_size=step_size,
        steps=steps,
        norm=norm,
        lo=lo,
        hi=hi,
        loss_fn=loss_fn or _summed_cross_entropy,
    )


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    """l_2 norm of each sample, shaped [N, 1, ..., 1] to broadcast against ``t``."""
    return t.flatten(1).norm(p=2, dim=1).view(-1, *([1] * (t.ndim - 1)))


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    norms = _per_sample_norm(delta).clamp_min(torch.finfo(delta.dtype).tiny)
    return delta * (eps / norms).clamp(max=1.0)


def _random_start(x: torch.Tensor, eps: float, norm: str, seed: int) -> torch.Tensor:
    """A start drawn uniformly from the eps-ball, from a private CPU generator (so the result is
    the same on every device and the global RNG is never advanced)."""
    generator = torch.Generator().manual_seed(seed)
    shape = x.shape
    if norm == "linf":
        delta = (2.0 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1.0) * eps
    else:
        direction = torch.randn(shape, generator=generator, dtype=torch.float64)
        direction = direction / _per_sample_norm(direction).clamp_min(1e-300)
        d = math.prod(shape[1:])
        u = torch.rand(shape[0], generator=generator, dtype=torch.float64)
        radius = eps * u.pow(1.0 / d).view(-1, *([1] * (len(shape) - 1)))
        delta = direction * radius
    return delta.to(device=x.device, dtype=x.dtype)


def _input_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = loss_fn(model(x), y)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise SplinescopeError("loss_fn(logits, y) must return a scalar tensor")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _run_pgd(model: nn.Module, plan: _Plan, chunk: slice = slice(None)) -> torch.Tensor:
    """The PGD loop itself, on the samples ``chunk``; call inside :func:`attacking`."""
    x, y, eps, norm = plan.x[chunk], plan.y[chunk], plan.eps, plan.norm
    x_adv = (x + _project(plan.delta0[chunk], eps, norm)).clamp(plan.lo, plan.hi)
    for _ in range(plan.steps):
        grad = _input_gradient(model, x_adv, y, plan.loss_fn)
        if norm == "linf":
            step = grad.sign()
        else:
            step = grad / _per_sample_norm(grad).clamp_min(torch.finfo(grad.dtype).tiny)
        x_adv = x_adv + plan.step_size * step
        x_adv = (x + _project(x_adv - x, eps, norm)).clamp(plan.lo, plan.hi)
    return x_adv.detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "linf",
    domain: tuple[float, float],
    random_start: bool = True,
    seed: int = 0,
    loss_fn: LossFn | None = None,
) -> torch.Tensor:
    """Projected gradient ascent on ``loss_fn`` (default: summed cross-entropy) within the
    ``norm`` ball of radius ``eps`` around each sample, clamped to ``domain = (lo, hi)``.

    ``x`` [N, *input_shape] in the domain, ``y`` [N] labels; returns ``x_adv`` of x's shape,
    dtype and device. ``random_start`` draws the start uniformly from the ball (l_inf: each
    coordinate in [-eps, eps]; l_2: uniform in the ball) with a private generator seeded by
    ``seed``. The model is run in eval mode; its mode, parameters, buffers, ``.grad`` and the
    global RNG are left as they were.

    >>> from splinescope.models import MLP
    >>> model, x, y = MLP(4, 3), torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])
    >>> x_adv = pgd(model, x, y, eps=0.1, step_size=0.02, steps=10, domain=(0.0, 1.0))
    >>> bool((x_adv - x).abs().max() <= 0.1 + 1e-6)
    True
    """
    plan = _plan(
        model,
        x,
        y,
        eps=eps,
        step_size=step_size,
        steps=steps,
        norm=norm,
        domain=domain,
        random_start=random_start,
        seed=seed,
        loss_fn=loss_fn,
    )
    with attacking(model):
        x_adv = _run_pgd(model, plan)
    return x_adv.to(x.device)


def _fgsm_as_pgd(eps: object) -> dict[str, object]:
    """FGSM as PGD: one step of length eps (any length when eps is 0) from x itself."""
    step = eps if isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps > 0 else 1.0
    return {"eps": eps, "step_size": step, "steps": 1, "random_start": False}


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    domain: tuple[float, float],
    loss_fn: LossFn | None = None,
) -> torch.Tensor:
    """Fast gradient (sign) method (Goodfellow et al., 2015): one step of length ``eps`` along
    ``sign(grad)`` (l_inf) or ``grad / ||grad||_2`` (l_2) from ``x``, clamped to ``domain``.
    Equal to :func:`pgd` with ``steps=1, step_size=eps, random_start=False``."""
    return pgd(model, x, y, norm=norm, domain=domain, loss_fn=loss_fn, **_fgsm_as_pgd(eps))


def adversarial_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    attack: str = "pgd",
    batch_size: int | None = None,
    **kw: object,
) -> float:
    """Share of samples still classified correctly after ``attack`` (``"pgd"`` or ``"fgsm"``;
    ``kw`` are that attack's keyword arguments, ``eps`` and ``domain`` required).

    Samples are attacked ``batch_size`` at a time (all at once by default); the PGD random start
    is drawn for all samples up front, so the figure does not depend on ``batch_size``.
    Measuring leaves the model and the global RNG as they were.
    """
    if attack not in ATTACKS:
        raise SplinescopeError(f"attack must be one of {', '.join(ATTACKS)}, got {attack!r}")
    allowed = _PGD_ARGS if attack == "pgd" else _FGSM_ARGS
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise SplinescopeError(
            f"unknown argument(s) {', '.join(map(repr, unknown))} for attack {attack!r}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    required = ("eps", "domain", "step_size", "steps") if attack == "pgd" else ("eps", "domain")
    missing = [name for name in required if name not in kw]
    if missing:
        raise SplinescopeError(f"attack {attack!r} needs argument(s) {', '.join(missing)}")
    if batch_size is not None:
        _check_int(batch_size, "batch_size", 1)
    if attack == "fgsm":
        kw = {**kw, **_fgsm_as_pgd(kw["eps"])}
    plan = _plan(model, x, y, **kw)  # type: ignore[arg-type]
    n = plan.x.shape[0]
    if n == 0:
        raise SplinescopeError("x is empty: adversarial accuracy of no samples is undefined")
    size = n if batch_size is None else batch_size
    correct = 0
    with attacking(model):
        for start in range(0, n, size):
            chunk = slice(start, start + size)
            x_adv = _run_pgd(model, plan, chunk)
            with torch.no_grad():
                correct += int((model(x_adv).argmax(dim=1) == plan.y[chunk]).sum())
    return correct / n
