"""Adversarial accuracy under FGSM and PGD in l_inf and l_2, clamped to the data domain."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.probe import ProbeContext, ProbeResult, subset

ATTACKS = ("fgsm", "pgd")
NORMS = ("linf", "l2")


@dataclass(frozen=True)
class AttackSpec:
    """One attack: ``attack`` in ``("fgsm", "pgd")``, ``norm`` in ``("linf", "l2")``.

    ``eps`` is the budget in input units; PGD takes ``steps`` steps of ``step_size``
    (default ``2.5 * eps / steps``, Madry et al.) from a seeded random start.
    """

    attack: str = "pgd"
    norm: str = "linf"
    eps: float = 0.1
    steps: int = 10
    step_size: float | None = None
    random_start: bool = True

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise SplinescopeError(f"attack: expected one of {ATTACKS}, got {self.attack!r}")
        if self.norm not in NORMS:
            raise SplinescopeError(f"norm: expected one of {NORMS}, got {self.norm!r}")
        if not self.eps > 0:
            raise SplinescopeError(f"eps: must be > 0, got {self.eps!r}")
        if self.attack == "pgd" and self.steps < 1:
            raise SplinescopeError(f"steps: PGD needs at least one step, got {self.steps!r}")
        if self.attack == "fgsm" and self.norm != "linf":
            raise SplinescopeError("norm: FGSM is an l_inf attack; use PGD for l2")

    @property
    def key(self) -> str:
        """Store key, e.g. ``pgd_linf_acc``."""
        return f"{self.attack}_{self.norm}_acc"


def attack_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: AttackSpec,
    *,
    domain: tuple[float, float],
    loss_fn=None,
    seed: int = 0,
    batch_size: int = 1024,
) -> float:
    """Accuracy of ``model`` on adversarial versions of ``(x, y)`` made by ``spec``.

    The attack runs on the model in eval mode (modes restored afterwards); adversarial
    points are clamped to ``domain``. Returns a share in [0, 1].
    """
    from splinescope.robustness import fgsm, pgd

    modes = [(m, m.training) for m in model.modules()]
    correct = 0
    try:
        model.eval()
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            if spec.attack == "fgsm":
                adv = fgsm(
                    model, xb, yb, eps=spec.eps, norm=spec.norm, domain=domain, loss_fn=loss_fn
                )
            else:
                step_size = spec.step_size or 2.5 * spec.eps / spec.steps
                adv = pgd(
                    model,
                    xb,
                    yb,
                    eps=spec.eps,
                    step_size=step_size,
                    steps=spec.steps,
                    norm=spec.norm,
                    domain=domain,
                    random_start=spec.random_start,
                    seed=seed + start,
                    loss_fn=loss_fn,
                )
            with torch.no_grad():
                correct += int((model(adv).argmax(dim=1) == yb).sum())
    finally:
        for module, mode in modes:
            module.training = mode
    return correct / x.shape[0]


@dataclass(frozen=True)
class AdversarialProbe:
    """Adversarial accuracy under each attack of ``attacks``, on test (and train) points.

    Args:
        attacks: the attacks to run.
        splits: ``("test",)`` by default; ``"train"`` adds ``train_``-prefixed keys.
        n_points: points per split (a fixed seeded subset; ``None`` for all).
        use_loss_fn: attack the training loss (``ctx.loss_fn``) instead of cross-entropy.
        seed: seed of the subset and the PGD random starts.

    Keys: ``<attack>_<norm>_acc`` on test points, ``train_<attack>_<norm>_acc`` on training
    points, e.g. ``pgd_linf_acc``.
    """

    attacks: tuple[AttackSpec, ...] = (AttackSpec("pgd", "linf"),)
    splits: tuple[str, ...] = ("test",)
    n_points: int | None = 500
    use_loss_fn: bool = False
    seed: int = 0
    name: str = "adversarial"

    def __post_init__(self) -> None:
        if not self.attacks:
            raise SplinescopeError("attacks: need at least one attack")
        bad = [s for s in self.splits if s not in ("train", "test")]
        if bad or not self.splits:
            raise SplinescopeError(
                f"splits: expected a non-empty subset of ('train', 'test'), got {self.splits!r}"
            )
        keys = [a.key for a in self.attacks]
        if len(set(keys)) != len(keys):
            raise SplinescopeError(f"attacks: two attacks share a key ({keys})")

    @property
    def needs(self) -> tuple[str, ...]:
        return (*self.splits, "domain") + (("loss_fn",) if self.use_loss_fn else ())

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        scalars: dict[str, float] = {}
        loss_fn = ctx.loss_fn if self.use_loss_fn else None
        for split in self.splits:
            x, y = (ctx.x_test, ctx.y_test) if split == "test" else (ctx.x_train, ctx.y_train)
            x, y = subset(x, y, self.n_points, seed=self.seed + (1 if split == "test" else 0))
            prefix = "" if split == "test" else "train_"
            for spec in self.attacks:
                scalars[prefix + spec.key] = attack_accuracy(
                    model, x, y, spec, domain=ctx.domain, loss_fn=loss_fn, seed=self.seed
                )
        return ProbeResult(scalars=scalars)
