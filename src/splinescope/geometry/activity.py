"""Dead and always-on units: hinge units that never / always fire on a point set."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.nn import describe, record_states


@dataclass(frozen=True)
class UnitActivity:
    """Shares of hinge (ReLU-family) units that are dead / always on over a point set.

    Attributes:
        dead_frac: units with pre-activation ≤ 0 at every point, over all hinge units.
        always_on_frac: units with pre-activation > 0 at every point, over all hinge units.
        per_layer: ``{layer: (dead, always_on)}`` shares within each hinge layer.
        n_units: number of hinge units counted.
        skipped: ``{layer: reason}`` for partition layers not counted (not hinge layers).
    """

    dead_frac: float
    always_on_frac: float
    per_layer: dict[str, tuple[float, float]]
    n_units: int
    skipped: dict[str, str]


def unit_activity(
    model: nn.Module, x: torch.Tensor, *, batch_size: int | None = None
) -> UnitActivity:
    """Dead and always-on hinge units of ``model`` over the inputs ``x`` ``[N, *shape]``.

    Only ``"hinge"`` layers count: max-pool, smooth, two-hinge and output units have no
    on/off state in this sense and are listed in ``skipped`` with their kind. The model is
    measured in eval mode and left as it was.
    """
    units = describe(model, x[:1])
    hinge = [layer.name for layer in units.layers if layer.kind == "hinge"]
    skipped = {
        layer.name: f"{layer.kind} units have no single on/off state"
        for layer in units.layers
        if layer.kind != "hinge"
    }
    if not hinge:
        raise SplinescopeError(
            f"model: no hinge (ReLU-family) units to count; found layers "
            f"{[(layer.name, layer.kind) for layer in units.layers]}"
        )
    states = record_states(model, x, layers=hinge, batch_size=batch_size)
    dead = on = total = 0
    per_layer: dict[str, tuple[float, float]] = {}
    for name in hinge:
        s = states[name]
        layer_dead = int((s <= 0).all(dim=0).sum())
        layer_on = int((s > 0).all(dim=0).sum())
        per_layer[name] = (layer_dead / s.shape[1], layer_on / s.shape[1])
        dead, on, total = dead + layer_dead, on + layer_on, total + s.shape[1]
    return UnitActivity(dead / total, on / total, per_layer, total, skipped)
