"""Neural collapse (NC1-NC4) of the penultimate features over training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.probes._layers import classifier_input, split_points
from splinescope.monitor.registry import Outputs, ScalarKey, probe_kind
from splinescope.representation import neural_collapse

_KEYS = (
    ("nc1", "NC1 = Tr(Σ_W Σ_B⁺)/C (Papyan et al.)", True),
    ("nc1_trace_ratio", "NC1 variant Tr(Σ_W)/Tr(Σ_T) (within / total variance)", False),
    ("nc2_equinorm", "NC2 equinorm of class means (std/mean of norms)", False),
    ("nc2_equiangularity", "NC2 equiangularity of class means (std of cosines)", False),
    ("nc2_max_angle", "NC2 max-angle of class means (mean |cos + 1/(C-1)|)", False),
    ("nc2_w_equinorm", "NC2 equinorm of classifier rows", False),
    ("nc2_w_equiangularity", "NC2 equiangularity of classifier rows", False),
    ("nc2_w_max_angle", "NC2 max-angle of classifier rows", False),
    ("nc3", "NC3 self-duality ‖W/‖W‖ − M/‖M‖‖²", False),
    ("nc4", "NC4 nearest-class-mean disagreement with the classifier", False),
)


@probe_kind("collapse", figure="splinescope.report.representation_figures:collapse_figures")
@dataclass(frozen=True)
class NeuralCollapseProbe:
    """Neural collapse (Papyan, Han & Donoho 2020) of the classifier's input features on a
    fixed subset of one split (:func:`splinescope.representation.neural_collapse`).

    Args:
        classifier: the final ``nn.Linear`` module's name (default: the last ``nn.Linear``
            called in the forward); its input is the penultimate feature vector.
        split: ``"train"`` (where collapse is defined) or ``"test"``.
        n_points: size of the fixed seeded subset (``None``: all points).
        batch_size: points per forward; seed: seed of the subset.

    Keys: ``nc1`` (Σ_W, Σ_B normalised as in the paper; see ``NeuralCollapse.normalisation``),
    ``nc1_trace_ratio``, ``nc2_*`` of the class means and ``nc2_w_*`` of the classifier rows,
    ``nc3``, ``nc4``.
    """

    classifier: str | None = None
    split: Literal["train", "test"] = "train"
    n_points: int | None = 1000
    batch_size: int = 1024
    seed: int = 0
    name: str = "collapse"

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.split,)

    def outputs(self) -> Outputs:
        return Outputs(tuple(ScalarKey(k, label, headline=h) for k, label, h in _KEYS))

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        x, y = split_points(ctx, self.split, self.n_points, self.seed)
        _, linear, feats = classifier_input(model, x, self.classifier, self.batch_size)
        nc = neural_collapse(feats, y, classifier=linear)
        return ProbeResult(scalars={k: float(getattr(nc, k)) for k, _, _ in _KEYS})
