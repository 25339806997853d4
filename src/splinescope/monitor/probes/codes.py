"""Activation codes over training: determinism and categorisation ("hash encoder" view)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from splinescope.geometry.codes import code_metrics
from splinescope.monitor.probe import ProbeContext, ProbeResult


@dataclass(frozen=True)
class CodesProbe:
    """Redundancy ratio, single-sample share, class Hamming distances and, with
    ``categorise``, KNN (Hamming) / logistic-regression / matched K-means accuracies on codes.

    He, Lei, Ji, Tao, "Neural networks behave as hash encoders". Measured on the first
    ``n_points`` train and test points (the same points at every step).
    """

    name: str = "codes"
    needs: tuple[str, ...] = ("train", "test")
    n_points: int = 500
    categorise: bool = True
    seed: int = 0

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        n = self.n_points
        scalars = code_metrics(
            model,
            ctx.x_train[:n],
            ctx.y_train[:n],
            ctx.x_test[:n],
            ctx.y_test[:n],
            categorise=self.categorise,
            seed=self.seed,
        )
        return ProbeResult(scalars={k: float(v) for k, v in scalars.items()})
