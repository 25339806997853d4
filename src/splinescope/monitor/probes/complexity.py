"""Local complexity on training, test and random points, and per class, on a fixed frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.complexity import local_complexity
from splinescope.monitor.probe import ProbeContext, ProbeResult, subset

SPLITS = ("train", "test", "random")


@dataclass(frozen=True)
class LocalComplexityProbe:
    """Mean local complexity (Humayun et al.) on train, test and random points, and per class.

    The neighbourhood frame and the point subsets are drawn from fixed seeds, so every step
    measures the same neighbourhoods and curves are comparable across steps.

    Args:
        radius: neighbourhood radius r in input units.
        n_vertices: vertices of the cross-polytope (even).
        n_points: points per split (a fixed seeded subset; ``None`` for all).
        splits: which of ``"train"``, ``"test"``, ``"random"`` to measure.
        per_class: also report the mean total per class of the training points.
        seed: seed of the frame and the subsets.
        neighborhood, layers: as in :func:`splinescope.local_complexity`.

    Keys: ``<split>_total`` (mean over points of the count summed over layers),
    ``<split>_total_sem``, ``<split>/<layer>`` (mean per layer), ``class_<c>_total``;
    arrays ``<split>_counts`` int64 ``[N, L]``.
    """

    radius: float
    n_vertices: int = 50
    n_points: int | None = 1000
    splits: tuple[str, ...] = SPLITS
    per_class: bool = True
    seed: int = 0
    neighborhood: str = "ortho"
    layers: tuple[str, ...] | None = None
    store_counts: bool = True
    name: str = "lc"

    def __post_init__(self) -> None:
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown or not self.splits:
            raise SplinescopeError(
                f"splits: expected a non-empty subset of {SPLITS}, got {self.splits!r}"
            )
        if self.per_class and "train" not in self.splits:
            raise SplinescopeError("per_class: needs 'train' in splits")

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(self.splits)

    def _points(self, split: str, ctx: ProbeContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = {"train": ctx.x_train, "test": ctx.x_test, "random": ctx.x_random}[split]
        y = {"train": ctx.y_train, "test": ctx.y_test, "random": None}[split]
        return subset(x, y, self.n_points, seed=self.seed + SPLITS.index(split))

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        scalars: dict[str, float] = {}
        arrays: dict[str, np.ndarray] = {}
        for split in self.splits:
            x, y = self._points(split, ctx)
            lc = local_complexity(
                model,
                x,
                radius=self.radius,
                n_vertices=self.n_vertices,
                neighborhood=self.neighborhood,
                layers=list(self.layers) if self.layers is not None else None,
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
