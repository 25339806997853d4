"""Activation codes over training: determinism and categorisation ("hash encoder" view)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from splinescope.geometry.codes import code_metrics
from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.registry import Outputs, ScalarKey, probe_kind

_CATEGORISATION = (
    ("knn_*", "k-NN (Hamming) accuracy on codes"),
    ("logreg_*", "logistic-regression accuracy on codes"),
    ("kmeans_*", "matched K-means accuracy on codes"),
)


@probe_kind("codes")
@dataclass(frozen=True)
class CodesProbe:
    """Redundancy ratio, single-sample share, class Hamming distances and, with
    ``categorise``, KNN (Hamming) / logistic-regression / matched K-means accuracies on codes.

    He, Lei, Ji, Tao, "Neural networks behave as hash encoders". Measured on the first
    ``n_points`` train and test points (the same points at every step).
    """

    n_points: int = 500
    categorise: bool = True
    seed: int = 0
    name: str = "codes"
    needs: tuple[str, ...] = field(default=("train", "test"), init=False, repr=False)

    def outputs(self) -> Outputs:
        scalars = [
            ScalarKey("n_bits", "code length (bits)"),
            ScalarKey("n_distinct", "distinct codes among train points"),
            ScalarKey("redundancy_ratio", "redundancy ratio (train points per code)"),
            ScalarKey("single_sample_share", "share of codes holding one train point"),
            ScalarKey("within_hamming", "mean Hamming distance within a class"),
            ScalarKey("between_hamming", "mean Hamming distance between classes"),
        ]
        if self.categorise:
            scalars += [ScalarKey(pattern, label) for pattern, label in _CATEGORISATION]
        return Outputs(tuple(scalars))

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
