"""Local complexity at the decision boundary: bisection points beside train/test/random LC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.boundary import decision_boundary_points
from splinescope.geometry.complexity import local_complexity
from splinescope.monitor.probe import ProbeContext, ProbeResult, subset
from splinescope.monitor.probes.complexity import DEFAULT_VERTICES, SPLITS
from splinescope.monitor.registry import ArrayKey, Outputs, ScalarKey, probe_kind
from splinescope.nn.selectors import UNITS, Units, resolve_units


@probe_kind("boundary_lc", figure="splinescope.report.paper:boundary_lc_figures")
@dataclass(frozen=True)
class BoundaryLCProbe:
    """Mean local complexity at points on the decision boundary (Humayun et al.: regions
    migrate there while LC near the data falls).

    The sources are the same seeded subset of training points as the ``lc`` probe's train
    split (same ``n_points`` and ``seed``); each is joined to its nearest (Euclidean) training
    point of the subset that the model predicts as another class, and the segment is bisected
    to a logit tie within ``tol`` (:func:`splinescope.geometry.decision_boundary_points`).
    LC at the boundary points uses the frame of the ``lc`` probe with the same ``seed`` and
    vertex count, so its curve is comparable with the train/test/random curves.

    Args:
        radius, n_vertices, n_points, seed, neighborhood, layers, units: as in the ``lc``
            probe (``n_points`` counts the sources).
        tol, max_iter, n_scan: as in :func:`~splinescope.geometry.decision_boundary_points`.

    Keys: ``boundary_total`` (mean over boundary points of the count summed over layers),
    ``boundary_total_sem``, ``boundary/<layer>``; ``n_boundary_points`` found and
    ``n_skipped`` sources (no differently predicted point in the subset: at initialisation
    a network may predict one class for all of them — the LC keys are then not emitted, and
    ``n_boundary_points`` is 0); ``boundary_distance`` (mean distance from a source to its
    boundary point, input units); ``max_abs_gap`` (largest ``|f_a − max_{k≠a} f_k|`` at the
    points, logit units); array ``boundary_counts`` int64 ``[M, L]``.
    """

    radius: float = 0.05
    n_vertices: int | None = None
    n_points: int | None = 1000
    seed: int = 0
    neighborhood: Literal["ortho", "ball"] = "ortho"
    layers: tuple[str, ...] | None = None
    units: Units = "activations"
    tol: float = 1e-4
    max_iter: int = 60
    n_scan: int = 1
    store_counts: bool = False
    name: str = "boundary_lc"

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise SplinescopeError(f"radius: must be > 0, got {self.radius!r}")
        if self.n_vertices is not None and (self.n_vertices < 2 or self.n_vertices % 2):
            raise SplinescopeError(f"n_vertices: must be even and ≥ 2, got {self.n_vertices}")
        if self.units not in UNITS:
            raise SplinescopeError(f"units: expected one of {UNITS}, got {self.units!r}")
        if self.units == "linear_outputs" and self.layers is not None:
            raise SplinescopeError("layers: leave unset with units='linear_outputs'")
        if not self.tol > 0:
            raise SplinescopeError(f"tol: must be > 0, got {self.tol!r}")

    @property
    def needs(self) -> tuple[str, ...]:
        return ("train",)

    def outputs(self) -> Outputs:
        arrays = (
            (
                ArrayKey(
                    "boundary_counts", "cut units per boundary point and layer", "[M, L]", "int64"
                ),
            )
            if self.store_counts
            else ()
        )
        return Outputs(
            (
                ScalarKey(
                    "boundary_total",
                    "LC at decision-boundary points",
                    headline=True,
                    axis="local complexity",
                    role="boundary_lc",
                ),
                ScalarKey("boundary_total_sem", "standard error of LC at boundary points"),
                ScalarKey("boundary/*", "LC of one layer at boundary points"),
                ScalarKey("n_boundary_points", "boundary points found"),
                ScalarKey("n_skipped", "sources without a differently predicted partner"),
                ScalarKey("boundary_distance", "mean distance to the decision boundary"),
                ScalarKey("max_abs_gap", "largest logit gap at the boundary points", "logits"),
            ),
            arrays,
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        x, _ = subset(
            ctx.x_train, ctx.y_train, self.n_points, seed=self.seed + SPLITS.index("train")
        )
        found = decision_boundary_points(
            model, x, tol=self.tol, max_iter=self.max_iter, n_scan=self.n_scan
        )
        scalars = {
            "n_boundary_points": float(len(found)),
            "n_skipped": float(len(found.skipped)),
        }
        arrays: dict[str, np.ndarray] = {}
        if len(found) == 0:
            return ProbeResult(scalars=scalars)
        scalars["boundary_distance"] = float(found.distance.mean())
        scalars["max_abs_gap"] = float(found.gap.abs().max())
        dim = int(np.prod(x.shape[1:]))
        lc = local_complexity(
            model,
            found.points.to(x.device),
            radius=self.radius,
            n_vertices=self.n_vertices or min(DEFAULT_VERTICES, 2 * dim),
            neighborhood=self.neighborhood,
            layers=resolve_units(model, self.units, self.layers),
            seed=self.seed,
        )
        scalars["boundary_total"] = lc.mean_total
        scalars["boundary_total_sem"] = lc.sem_total
        for layer, value in lc.mean_per_layer.items():
            scalars[f"boundary/{layer}"] = value
        if self.store_counts:
            arrays["boundary_counts"] = lc.counts.numpy()
        return ProbeResult(scalars=scalars, arrays=arrays)


__all__ = ["BoundaryLCProbe"]
