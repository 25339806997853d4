"""Intrinsic dimension of each layer's representation over training."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.probes._layers import Split, layer_outputs, split_points
from splinescope.monitor.registry import Outputs, ScalarKey, probe_kind
from splinescope.representation import intrinsic_dimension

_NAMES = {"twonn": "TwoNN (Facco et al.)", "mle": "Levina-Bickel MLE"}


@probe_kind("intrinsic_dim", figure="splinescope.report.representation_figures:dimension_figures")
@dataclass(frozen=True)
class IntrinsicDimensionProbe:
    """Intrinsic dimension (:func:`splinescope.representation.intrinsic_dimension`) of the
    inputs and of each layer's output on a fixed subset of one split.

    Args:
        layers: module names (default: every activation module, in execution order).
        split: which points; n_points: size of the fixed seeded subset (``None``: all).
        method: ``"twonn"`` (regression fit, 10 % of the largest ratios discarded) or
            ``"mle"`` (Levina-Bickel with ``k`` neighbours, MacKay-Ghahramani average).
        conv: conv features ``"flatten"`` or position-``"mean"``.
        batch_size: points per forward; seed: seed of the subset.

    Keys: ``input``, ``id/<layer>``; ``duplicates/<layer>`` counts the points whose features
    coincide with another's (removed before estimating, as the measure does).
    """

    layers: tuple[str, ...] | None = None
    split: Split = "train"
    n_points: int | None = 500
    method: Literal["twonn", "mle"] = "twonn"
    k: int = 20
    conv: Literal["flatten", "mean"] = "flatten"
    batch_size: int = 1024
    seed: int = 0
    name: str = "intrinsic_dim"

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.split,)

    def outputs(self) -> Outputs:
        what = _NAMES[self.method] + (f", k = {self.k}" if self.method == "mle" else "")
        return Outputs(
            (
                ScalarKey("input", f"intrinsic dimension of the inputs ({what})"),
                ScalarKey("id/*", f"intrinsic dimension ({what})", headline=False),
                ScalarKey("duplicates/*", "duplicate feature vectors removed"),
            )
        )

    def _estimate(self, name: str, x) -> tuple[float, int]:
        flat = x
        if x.ndim > 2:
            flat = x.flatten(1) if self.conv == "flatten" else x.flatten(2).mean(dim=2)
        with warnings.catch_warnings():  # the count of duplicates is stored instead
            warnings.simplefilter("ignore", UserWarning)
            try:
                est = intrinsic_dimension(flat, method=self.method, k=self.k)
            except SplinescopeError as exc:
                raise SplinescopeError(f"layer {name!r}: {exc}") from exc
        return est.dimension, est.n_duplicates_removed

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        x, _ = split_points(ctx, self.split, self.n_points, self.seed)
        scalars: dict[str, float] = {}
        scalars["input"] = self._estimate("input", x.flatten(1))[0]
        for name, feats in layer_outputs(model, x, self.layers, self.batch_size).items():
            dim, dups = self._estimate(name, feats)
            scalars[f"id/{name}"] = dim
            scalars[f"duplicates/{name}"] = float(dups)
        return ProbeResult(scalars=scalars)
