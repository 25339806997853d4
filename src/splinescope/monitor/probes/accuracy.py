"""Loss and accuracy on the training and test sets."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.registry import Outputs, ScalarKey, probe_kind
from splinescope.nn.evaluation import evaluate


@probe_kind("accuracy", figure="splinescope.report.figures:accuracy_figures")
@dataclass(frozen=True)
class AccuracyProbe:
    """Loss and accuracy on the training and test sets (:func:`splinescope.nn.evaluate`).

    Keys: ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``.
    """

    batch_size: int = 4096
    name: str = "accuracy"
    needs: tuple[str, ...] = field(default=("train", "test", "loss_fn"), init=False, repr=False)

    def outputs(self) -> Outputs:
        return Outputs(
            (
                ScalarKey(
                    "train_acc",
                    "train accuracy",
                    headline=True,
                    axis="accuracy",
                    role="train_accuracy",
                ),
                ScalarKey(
                    "test_acc",
                    "test accuracy",
                    headline=True,
                    axis="accuracy",
                    role="test_accuracy",
                ),
                ScalarKey("train_loss", "train loss", "training loss units"),
                ScalarKey("test_loss", "test loss", "training loss units"),
            )
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        scalars: dict[str, float] = {}
        for split, x, y in (("train", ctx.x_train, ctx.y_train), ("test", ctx.x_test, ctx.y_test)):
            result = evaluate(model, x, y, ctx.loss_fn, batch_size=self.batch_size)
            scalars[f"{split}_loss"] = result.loss
            scalars[f"{split}_acc"] = result.accuracy
        return ProbeResult(scalars=scalars)
