"""Loss and accuracy of a classifier on a labelled point set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.nn.guard import measuring

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Evaluation:
    """Mean loss and accuracy over ``n`` points.

    Attributes:
        loss: the loss function's batch means weighted by batch size (its units).
        accuracy: share of points whose arg-max logit is the label, in [0, 1].
        n: number of points.
    """

    loss: float
    accuracy: float
    n: int


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    *,
    batch_size: int = 4096,
) -> Evaluation:
    """Mean loss and accuracy of ``model`` on ``(x, y)``, in eval mode, changing nothing.

    Args:
        model: classifier mapping ``[B, *input_shape]`` to logits ``[B, C]``.
        x: inputs ``[N, *input_shape]``; y: int64 labels ``[N]``.
        loss_fn: ``loss_fn(logits, labels)`` returning a batch mean.
        batch_size: points per forward pass (the result does not depend on it beyond
            floating-point summation order).
    """
    if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise SplinescopeError(
            f"x, y: expected the same non-zero number of rows, got {x.shape[0]} and {y.shape[0]}"
        )
    if batch_size < 1:
        raise SplinescopeError(f"batch_size: must be ≥ 1, got {batch_size}")
    total_loss = 0.0
    correct = 0
    with measuring(model):
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            logits = model(xb)
            total_loss += float(loss_fn(logits, yb)) * xb.shape[0]
            correct += int((logits.argmax(dim=1) == yb).sum())
    n = int(x.shape[0])
    return Evaluation(total_loss / n, correct / n, n)
