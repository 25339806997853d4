"""Exact partition pictures over training: the plane through three training points."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.registry import ArrayKey, Outputs, ScalarKey, probe_kind


@probe_kind("partition")
@dataclass(frozen=True)
class PartitionProbe:
    """The exact regions of the plane through training points ``anchors`` (SplineCam-style
    picture, PNG bytes as a uint8 array under ``plane_png``) and the slice's region count
    ``n_regions``. The same plane at every step, so region migration is visible.
    """

    anchors: tuple[int, int, int] = (0, 1, 2)
    dpi: int = 80
    name: str = "partition"
    needs: tuple[str, ...] = field(default=("train",), init=False, repr=False)

    def outputs(self) -> Outputs:
        return Outputs(
            (ScalarKey("n_regions", "regions in the plane slice"),),
            (
                ArrayKey(
                    "plane_png", "partition picture", "[bytes]", "uint8", image=True, report=True
                ),
            ),
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        from splinescope.report.partition_plot import anchored_partition, partition_figure_of

        index = list(self.anchors)
        partition = anchored_partition(model, ctx.x_train[index])
        labels = [f"train {i} (y={int(ctx.y_train[i])})" for i in index]
        figure = partition_figure_of(
            partition, density=False, anchor_labels=labels, title=f"step {ctx.step}"
        )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=self.dpi)
        png = np.frombuffer(buffer.getvalue(), dtype=np.uint8).copy()
        return ProbeResult(
            scalars={"n_regions": float(len(partition.areas))}, arrays={"plane_png": png}
        )
