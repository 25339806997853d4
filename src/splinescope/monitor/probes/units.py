"""Dead and always-on units over training."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from splinescope.geometry.activity import unit_activity
from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.registry import Outputs, ScalarKey, probe_kind


@probe_kind("units", figure="splinescope.report.figures:units_figures")
@dataclass(frozen=True)
class UnitActivityProbe:
    """Share of dead and always-on hinge units on the training set
    (:func:`splinescope.geometry.unit_activity`).

    Keys: ``dead_frac``, ``always_on_frac``, ``dead/<layer>``, ``always_on/<layer>``.
    """

    batch_size: int | None = None
    name: str = "units"
    needs: tuple[str, ...] = field(default=("train",), init=False, repr=False)

    def outputs(self) -> Outputs:
        return Outputs(
            (
                ScalarKey("dead_frac", "dead units (fraction)", headline=True),
                ScalarKey("always_on_frac", "always-on units (fraction)"),
                ScalarKey("dead/*", "dead units of a layer (fraction)"),
                ScalarKey("always_on/*", "always-on units of a layer (fraction)"),
            )
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        activity = unit_activity(model, ctx.x_train, batch_size=self.batch_size)
        scalars = {"dead_frac": activity.dead_frac, "always_on_frac": activity.always_on_frac}
        for layer, (d, o) in activity.per_layer.items():
            scalars[f"dead/{layer}"] = d
            scalars[f"always_on/{layer}"] = o
        return ProbeResult(scalars=scalars)
