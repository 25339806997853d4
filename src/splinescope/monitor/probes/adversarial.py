"""Adversarial accuracy under FGSM or PGD in l_inf or l_2, at one or several budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.probe import ProbeContext, ProbeResult, subset
from splinescope.monitor.registry import Outputs, ScalarKey, probe_kind
from splinescope.robustness import adversarial_accuracy


def _eps_text(eps: float) -> str:
    return f"{eps:g}"


@probe_kind("adversarial")
@dataclass(frozen=True)
class AdversarialProbe:
    """Adversarial accuracy (:func:`splinescope.robustness.adversarial_accuracy`) under one
    attack at each budget of ``eps``, on test (and train) points.

    Args:
        attack: ``"pgd"`` (Madry et al.: ``steps`` steps of ``step_size``, default
            ``2.5·eps/steps``, from a seeded random start when ``random_start``) or
            ``"fgsm"`` (one step of length eps; l_inf or l_2).
        norm: ``"linf"`` or ``"l2"``; eps in input units; points clamped to the data domain.
        eps: one or several budgets.
        splits: ``("test",)`` by default; ``"train"`` adds ``train_``-prefixed keys.
        n_points: points per split (a fixed seeded subset; ``None`` for all).
        use_loss_fn: attack the training loss (``ctx.loss_fn``) instead of cross-entropy.
        seed: seed of the subset and the PGD random starts (the figure does not depend on
            ``batch_size``).

    Keys: ``<attack>_<norm>_acc`` on test points and ``train_<attack>_<norm>_acc`` on
    training points for a single budget, e.g. ``pgd_linf_acc``; with several budgets each
    key ends in ``_eps<eps>``, e.g. ``pgd_linf_acc_eps0.1``.
    """

    attack: Literal["pgd", "fgsm"] = "pgd"
    norm: Literal["linf", "l2"] = "linf"
    eps: tuple[float, ...] = (0.1,)
    steps: int = 10
    step_size: float | None = None
    random_start: bool = True
    splits: tuple[Literal["train", "test"], ...] = ("test",)
    n_points: int | None = 500
    use_loss_fn: bool = False
    batch_size: int | None = None
    seed: int = 0
    name: str = "adversarial"

    def __post_init__(self) -> None:
        if not self.eps or any(not e > 0 for e in self.eps) or len(set(self.eps)) != len(self.eps):
            raise SplinescopeError(f"eps: need distinct budgets > 0, got {self.eps!r}")
        if self.attack == "pgd" and self.steps < 1:
            raise SplinescopeError(f"steps: PGD needs at least one step, got {self.steps!r}")
        if not self.splits or len(set(self.splits)) != len(self.splits):
            raise SplinescopeError(
                f"splits: expected a non-empty subset of ('train', 'test'), got {self.splits!r}"
            )

    @property
    def needs(self) -> tuple[str, ...]:
        return (*self.splits, "domain") + (("loss_fn",) if self.use_loss_fn else ())

    def key(self, split: str, eps: float) -> str:
        """The store key of ``split`` at budget ``eps``."""
        prefix = "" if split == "test" else "train_"
        suffix = "" if len(self.eps) == 1 else f"_eps{_eps_text(eps)}"
        return f"{prefix}{self.attack}_{self.norm}_acc{suffix}"

    def outputs(self) -> Outputs:
        attack = f"{self.attack.upper()} {self.norm.replace('inf', '∞')}"
        return Outputs(
            tuple(
                ScalarKey(
                    self.key(split, eps),
                    f"{split} accuracy under {attack}, ε = {_eps_text(eps)}",
                    headline=True,
                    axis="accuracy",
                    role=f"{split}_adversarial_accuracy",
                )
                for split in self.splits
                for eps in self.eps
            )
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        scalars: dict[str, float] = {}
        loss_fn = ctx.loss_fn if self.use_loss_fn else None
        for split in self.splits:
            x, y = (ctx.x_test, ctx.y_test) if split == "test" else (ctx.x_train, ctx.y_train)
            x, y = subset(x, y, self.n_points, seed=self.seed + (1 if split == "test" else 0))
            for eps in self.eps:
                kw: dict = {"eps": eps, "norm": self.norm, "domain": ctx.domain}
                if loss_fn is not None:
                    kw["loss_fn"] = loss_fn
                if self.attack == "pgd":
                    kw.update(
                        step_size=self.step_size or 2.5 * eps / self.steps,
                        steps=self.steps,
                        random_start=self.random_start,
                        seed=self.seed,
                    )
                scalars[self.key(split, eps)] = adversarial_accuracy(
                    model, x, y, attack=self.attack, batch_size=self.batch_size, **kw
                )
        return ProbeResult(scalars=scalars)
