"""Loss and accuracy of a classifier on a labelled point set."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.probe import LossFn, ProbeContext, ProbeResult
from splinescope.nn.guard import measuring


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    *,
    batch_size: int = 4096,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``(x, y)``, in eval mode, changing nothing.

    Args:
        model: classifier mapping ``[B, *input_shape]`` to logits ``[B, C]``.
        x: inputs ``[N, *input_shape]``; y: int64 labels ``[N]``.
        loss_fn: ``loss_fn(logits, labels)`` returning a batch mean.
        batch_size: points per forward pass.

    Returns:
        ``(loss, accuracy)``: the batch means weighted by batch size; accuracy in [0, 1].
    """
    if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise SplinescopeError(
            f"x, y: expected the same non-zero number of rows, got {x.shape[0]} and {y.shape[0]}"
        )
    total_loss = 0.0
    correct = 0
    with measuring(model):
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            logits = model(xb)
            total_loss += float(loss_fn(logits, yb)) * xb.shape[0]
            correct += int((logits.argmax(dim=1) == yb).sum())
    return total_loss / x.shape[0], correct / x.shape[0]


@dataclass(frozen=True)
class AccuracyProbe:
    """Loss and accuracy on the training and test sets.

    Keys: ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``.
    """

    batch_size: int = 4096
    name: str = "accuracy"
    needs: tuple[str, ...] = ("train", "test", "loss_fn")

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        scalars: dict[str, float] = {}
        for split, x, y in (("train", ctx.x_train, ctx.y_train), ("test", ctx.x_test, ctx.y_test)):
            loss, acc = evaluate(model, x, y, ctx.loss_fn, batch_size=self.batch_size)
            scalars[f"{split}_loss"] = loss
            scalars[f"{split}_acc"] = acc
        return ProbeResult(scalars=scalars)
