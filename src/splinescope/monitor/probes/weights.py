"""Weight norms over training."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.registry import Outputs, ScalarKey, probe_kind
from splinescope.nn.weights import weight_norms


@probe_kind("weights", figure="splinescope.report.figures:weights_figures")
@dataclass(frozen=True)
class WeightNormProbe:
    """Weight norm per module (``norm/<module>``) and in total (``total_norm``)."""

    name: str = "weights"
    needs: tuple[str, ...] = field(default=(), init=False, repr=False)

    def outputs(self) -> Outputs:
        return Outputs(
            (
                ScalarKey("total_norm", "weight norm ‖θ‖₂", headline=True, role="weight_norm"),
                ScalarKey("norm/*", "norm of a module's own parameters"),
            )
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        norms = weight_norms(model)
        scalars = {f"norm/{k}": v for k, v in norms.per_module.items()}
        scalars["total_norm"] = norms.total
        return ProbeResult(scalars=scalars)
