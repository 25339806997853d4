"""Weight norms: the Frobenius norm of each module's own parameters and of all parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

ROOT = "(root)"


@dataclass(frozen=True)
class WeightNorms:
    """l2 (Frobenius) norms, computed in float64.

    Attributes:
        per_module: ``{module name: norm of the parameters it owns directly}`` in
            registration order; parameters of the root module are under ``"(root)"``.
        total: norm of all parameters together (``sqrt`` of the sum of squares).
    """

    per_module: dict[str, float]
    total: float


def weight_norms(model: nn.Module) -> WeightNorms:
    """The weight norms of ``model`` (parameters untouched)."""
    norms: dict[str, float] = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            own = list(module.parameters(recurse=False))
            if own:
                squared = sum(float(p.detach().double().pow(2).sum()) for p in own)
                norms[name or ROOT] = math.sqrt(squared)
    return WeightNorms(norms, math.sqrt(sum(v * v for v in norms.values())))
