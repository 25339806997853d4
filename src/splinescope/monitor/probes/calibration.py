"""Calibration of the model's softmax confidences over training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.probes._layers import logits_of, split_points
from splinescope.monitor.registry import ArrayKey, Outputs, ScalarKey, probe_kind
from splinescope.representation import calibration_error
from splinescope.representation.calibration import NORM_NAMES


@probe_kind("calibration", figure="splinescope.report.representation_figures:calibration_figures")
@dataclass(frozen=True)
class CalibrationProbe:
    """Top-label calibration (:func:`splinescope.representation.calibration_error`) of
    ``softmax(logits)`` on one split, with the reliability diagram as arrays.

    Args:
        split: ``"test"`` or ``"train"``; n_points: fixed seeded subset (``None``: all).
        n_bins, norm, binning: as in ``calibration_error`` (bins ``[e_b, e_b+1)``, last
            closed).
        batch_size: points per forward; seed: seed of the subset.

    Keys: ``error``, ``nll`` (nats), ``brier``, ``accuracy``; arrays ``bin_edges``
    ``[B + 1]``, ``bin_counts``, ``bin_confidence``, ``bin_accuracy`` ``[B]``.
    """

    split: Literal["test", "train"] = "test"
    n_points: int | None = None
    n_bins: int = 15
    norm: Literal["l1", "l2", "max"] = "l1"
    binning: Literal["width", "mass"] = "width"
    batch_size: int = 4096
    seed: int = 0
    name: str = "calibration"

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.split,)

    def outputs(self) -> Outputs:
        err = f"{NORM_NAMES[self.norm].split(' = ')[0]} on {self.split} points"
        bins = f"{self.n_bins} equal-{self.binning} bins"
        return Outputs(
            (
                ScalarKey("error", f"calibration error {err} ({bins})", headline=True),
                ScalarKey("nll", f"negative log-likelihood of softmax on {self.split}", "nats"),
                ScalarKey("brier", f"Brier score on {self.split} points"),
                ScalarKey("accuracy", f"top-1 accuracy on {self.split} points"),
            ),
            (
                ArrayKey("bin_edges", "confidence bin edges", "[B + 1]", "float64", report=True),
                ArrayKey("bin_counts", "points per bin", "[B]", "int64", report=True),
                ArrayKey(
                    "bin_confidence", "mean confidence per bin", "[B]", "float64", report=True
                ),
                ArrayKey("bin_accuracy", "accuracy per bin", "[B]", "float64", report=True),
            ),
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        x, y = split_points(ctx, self.split, self.n_points, self.seed)
        probs = torch.softmax(logits_of(model, x, self.batch_size).to(torch.float64), dim=1)
        cal = calibration_error(probs, y, n_bins=self.n_bins, norm=self.norm, binning=self.binning)
        return ProbeResult(
            scalars={
                "error": cal.error,
                "nll": cal.nll,
                "brier": cal.brier,
                "accuracy": cal.accuracy_overall,
            },
            arrays={
                "bin_edges": cal.edges.numpy(),
                "bin_counts": cal.counts.numpy(),
                "bin_confidence": cal.confidence.numpy(),
                "bin_accuracy": cal.accuracy.numpy(),
            },
        )
