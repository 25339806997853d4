"""Weight norms: the Frobenius norm of each layer's parameters and of all parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from splinescope.monitor.probe import ProbeContext, ProbeResult

ROOT = "(root)"


def weight_norms(model: nn.Module) -> dict[str, float]:
    """l2 (Frobenius) norm of the parameters each module owns directly, by module name.

    Parameters registered on the root module are reported under ``"(root)"``. Computed in
    float64. Returns ``{module name: norm}`` in registration order.
    """
    norms: dict[str, float] = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            own = list(module.parameters(recurse=False))
            if own:
                squared = sum(float(p.detach().double().pow(2).sum()) for p in own)
                norms[name or ROOT] = math.sqrt(squared)
    return norms


@dataclass(frozen=True)
class WeightNormProbe:
    """Weight norm per layer (``norm/<module>``) and in total (``total_norm``)."""

    name: str = "weights"
    needs: tuple[str, ...] = ()

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        norms = weight_norms(model)
        scalars = {f"norm/{k}": v for k, v in norms.items()}
        scalars["total_norm"] = math.sqrt(sum(v * v for v in norms.values()))
        return ProbeResult(scalars=scalars)
