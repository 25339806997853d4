"""Divergence: a non-finite loss or parameter during training, found and named.

A run diverges at the first step whose mini-batch loss is NaN or infinite (the tensor is
named ``"loss"``), or after whose update some parameter holds a NaN or an infinity (the
parameter's name from ``named_parameters()``, e.g. ``"layers.0.weight"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

POLICIES = ("stop", "continue")


@dataclass(frozen=True)
class Divergence:
    """Where a run diverged: ``step``, the offending ``tensor``'s name, and ``value``
    ("nan", "inf" or "-inf": the first non-finite value found in it)."""

    step: int
    tensor: str
    value: str

    def message(self) -> str:
        what = "loss" if self.tensor == "loss" else f"parameter {self.tensor!r}"
        return f"non-finite {what} ({self.value}) at step {self.step:,}"

    def to_dict(self) -> dict[str, object]:
        return {"step": self.step, "tensor": self.tensor, "value": self.value}


def _value_text(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def check_loss(step: int, loss: float) -> Divergence | None:
    """A :class:`Divergence` if ``loss`` (a Python float) is NaN or infinite, else None."""
    return None if math.isfinite(loss) else Divergence(step, "loss", _value_text(loss))


class ParameterCheck:
    """:func:`check_parameters` for one model whose parameters stay the same tensors (a
    training loop's): the names and tensors are listed once, so each call costs one fused norm,
    one stack and sum, and one host sync (≈ 25 µs instead of ≈ 70 µs on a 6-tensor MLP).

    ``check(step)`` returns what ``check_parameters(step, model)`` returns.
    """

    def __init__(self, model: nn.Module) -> None:
        self.named = [(name, p.detach()) for name, p in model.named_parameters()]
        self.tensors = [t for _, t in self.named]

    def check(self, step: int) -> Divergence | None:
        if not self.tensors:
            return None
        with torch.no_grad():
            norms = torch._foreach_norm(self.tensors) if hasattr(torch, "_foreach_norm") else None
            if norms is None:
                norms = [torch.linalg.vector_norm(t) for t in self.tensors]
            if any(n.dtype != torch.float32 for n in norms):
                norms = [n.to(torch.float32) for n in norms]
            if math.isfinite(torch.stack(norms).sum().item()):
                return None
            for name, t in self.named:
                bad = ~torch.isfinite(t)
                if bool(bad.any()):
                    first = float(t[bad].flatten()[0])
                    return Divergence(step, name, _value_text(first))
        return None  # the norm overflowed on finite values: not a divergence


def check_parameters(step: int, model: nn.Module) -> Divergence | None:
    """The first parameter of ``model`` (in ``named_parameters`` order) holding a NaN or an
    infinity, as a :class:`Divergence`; None if all are finite.

    Costs one fused norm over all parameters and one host sync per call; only when that norm
    is not finite (a non-finite entry, or an overflow of the norm itself) are the tensors
    looked at one by one. In a loop over one model, :class:`ParameterCheck` is cheaper.
    """
    return ParameterCheck(model).check(step)
