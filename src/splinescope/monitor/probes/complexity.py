"""Local complexity on training, test and random points, and per class, on a fixed frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.complexity import local_complexity
from splinescope.monitor.probe import ProbeContext, ProbeResult, subset
from splinescope.monitor.registry import ArrayKey, Outputs, ScalarKey, probe_kind
from splinescope.nn.selectors import UNITS, Units, resolve_units

SPLITS = ("train", "test", "random")
Split = Literal["train", "test", "random"]
#: Vertices used when ``n_vertices`` is not given: 50 (the paper's 25 directions), or all
#: 2·D of a D-dimensional input when D < 25.
DEFAULT_VERTICES = 50


@probe_kind("lc", figure="splinescope.report.figures:lc_figures")
@dataclass(frozen=True)
class LocalComplexityProbe:
    """Mean local complexity (Humayun et al.) on train, test and random points, and per class.

    The neighbourhood frame and the point subsets are drawn from fixed seeds, so every step
    measures the same neighbourhoods and curves are comparable across steps.

    Args:
        radius: neighbourhood radius r in input units.
        n_vertices: vertices of the cross-polytope (even); default ``min(50, 2·D)`` for
            D-dimensional inputs (the paper's 25 directions where the input allows).
        n_points: points per split (a fixed seeded subset; ``None`` for all).
        splits: which of ``"train"``, ``"test"``, ``"random"`` to measure.
        per_class: also report the mean total per class of the training points.
        seed: seed of the frame and the subsets.
        neighborhood, layers: as in :func:`splinescope.local_complexity`.
        units: ``"activations"`` — the partition units (activation inputs, or ``layers``);
            ``"linear_outputs"`` — the output of every ``nn.Linear``, logits included, as the
            published code counts it (:mod:`splinescope.nn.selectors`; ``layers`` unset).
        store_counts: store the per-point, per-layer counts as arrays.

    Keys: ``<split>_total`` (mean over points of the count summed over layers),
    ``<split>_total_sem``, ``<split>/<layer>`` (mean per layer), ``class_<c>_total``;
    arrays ``<split>_counts`` int64 ``[N, L]``.
    """

    radius: float = 0.05
    n_vertices: int | None = None
    n_points: int | None = 1000
    splits: tuple[Split, ...] = SPLITS
    per_class: bool = True
    seed: int = 0
    neighborhood: Literal["ortho", "ball"] = "ortho"
    layers: tuple[str, ...] | None = None
    units: Units = "activations"
    store_counts: bool = True
    name: str = "lc"

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise SplinescopeError(f"radius: must be > 0, got {self.radius!r}")
        if self.n_vertices is not None and (self.n_vertices < 2 or self.n_vertices % 2):
            raise SplinescopeError(f"n_vertices: must be even and ≥ 2, got {self.n_vertices}")
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown or not self.splits or len(set(self.splits)) != len(self.splits):
            raise SplinescopeError(
                f"splits: expected a non-empty subset of {SPLITS} without repeats, got "
                f"{self.splits!r}"
            )
        if self.units not in UNITS:
            raise SplinescopeError(f"units: expected one of {UNITS}, got {self.units!r}")
        if self.units == "linear_outputs" and self.layers is not None:
            raise SplinescopeError("layers: leave unset with units='linear_outputs'")
        if self.per_class and "train" not in self.splits:
            raise SplinescopeError("per_class: needs 'train' in splits")

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(self.splits)

    def outputs(self) -> Outputs:
        scalars: list[ScalarKey] = []
        arrays: list[ArrayKey] = []
        for split in self.splits:
            scalars += [
                ScalarKey(
                    f"{split}_total",
                    f"LC near {split} points",
                    headline=True,
                    axis="local complexity",
                    role=f"{split}_lc",
                ),
                ScalarKey(f"{split}_total_sem", f"standard error of LC near {split} points"),
                ScalarKey(f"{split}/*", f"LC of one layer near {split} points"),
            ]
            if self.store_counts:
                arrays.append(
                    ArrayKey(
                        f"{split}_counts",
                        f"cut units per {split} point and layer",
                        "[N, L]",
                        "int64",
                    )
                )
        if self.per_class:
            scalars.append(ScalarKey("class_*_total", "LC near the train points of a class"))
        return Outputs(tuple(scalars), tuple(arrays))

    def _points(self, split: str, ctx: ProbeContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = {"train": ctx.x_train, "test": ctx.x_test, "random": ctx.x_random}[split]
        y = {"train": ctx.y_train, "test": ctx.y_test, "random": None}[split]
        return subset(x, y, self.n_points, seed=self.seed + SPLITS.index(split))

    def vertices_for(self, input_shape: tuple[int, ...]) -> int:
        """The number of vertices used for inputs of ``input_shape``."""
        if self.n_vertices is not None:
            return self.n_vertices
        return min(DEFAULT_VERTICES, 2 * int(np.prod(input_shape)))

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        scalars: dict[str, float] = {}
        arrays: dict[str, np.ndarray] = {}
        layers = resolve_units(model, self.units, self.layers)
        for split in self.splits:
            x, y = self._points(split, ctx)
            lc = local_complexity(
                model,
                x,
                radius=self.radius,
                n_vertices=self.vertices_for(tuple(x.shape[1:])),
                neighborhood=self.neighborhood,
                layers=layers,
                seed=self.seed,
            )
            scalars[f"{split}_total"] = lc.mean_total
            scalars[f"{split}_total_sem"] = lc.sem_total
            for layer, value in lc.mean_per_layer.items():
                scalars[f"{split}/{layer}"] = value
            if self.store_counts:
                arrays[f"{split}_counts"] = lc.counts.numpy()
            if split == "train" and self.per_class and y is not None:
                total = lc.total.to(torch.float64)
                labels = y.cpu()
                for c in torch.unique(labels).tolist():
                    scalars[f"class_{c}_total"] = float(total[labels == c].mean())
        return ProbeResult(scalars=scalars, arrays=arrays)
