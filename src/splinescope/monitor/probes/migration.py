"""Region migration, measured: region-boundary density by distance to the decision boundary in
fixed planes through training points of different classes, at every step."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.migration import MigrationProfile, migration_profile
from splinescope.geometry.plane import Plane, PlanePartition, plane_through, regions_in_plane
from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.registry import ArrayKey, Outputs, ScalarKey, probe_kind


def plane_anchors(labels: torch.Tensor, n_planes: int) -> list[tuple[int, int, int]]:
    """Training indices of ``n_planes`` triples of points of three different classes.

    With the classes sorted, ``c_0 < c_1 < … < c_{C-1}``, plane k takes classes
    ``c_{3k mod C}, c_{3k+1 mod C}, c_{3k+2 mod C}`` and, of each, its
    ``⌊(3k + j) / C⌋``-th point in index order — a fixed choice, so every step and every run
    of the same data measures the same planes.

    Raises:
        SplinescopeError: fewer than three classes, or too few points of a class.
    """
    labels = labels.cpu()
    classes = torch.unique(labels).tolist()
    if len(classes) < 3:
        raise SplinescopeError(
            f"anchors: planes through three classes need ≥ 3 classes, the training labels "
            f"have {len(classes)}"
        )
    out = []
    for k in range(n_planes):
        triple = []
        for j in range(3):
            slot = 3 * k + j
            c = classes[slot % len(classes)]
            members = torch.nonzero(labels == c).flatten()
            rank = slot // len(classes)
            if rank >= members.numel():
                raise SplinescopeError(
                    f"n_planes: plane {k} needs point {rank} of class {c}, which has "
                    f"{members.numel()} training points"
                )
            triple.append(int(members[rank]))
        out.append(tuple(triple))
    return out


@dataclass(frozen=True)
class PooledProfile:
    """Profiles of several planes pooled: lengths and areas summed per bin."""

    bin_edges: np.ndarray
    boundary_length: np.ndarray
    area: np.ndarray
    band_length: float
    band_area: float
    total_length: float
    total_area: float

    @classmethod
    def of(cls, profiles: list[MigrationProfile]) -> PooledProfile:
        return cls(
            bin_edges=profiles[0].bin_edges,
            boundary_length=np.sum([p.boundary_length for p in profiles], axis=0),
            area=np.sum([p.area for p in profiles], axis=0),
            band_length=sum(p.band_length_share * p.total_length for p in profiles),
            band_area=sum(p.band_area_share * p.total_area for p in profiles),
            total_length=sum(p.total_length for p in profiles),
            total_area=sum(p.total_area for p in profiles),
        )

    @property
    def density(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(
                self.area > 0, self.boundary_length / np.where(self.area > 0, self.area, 1), np.nan
            )


def _share(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


@probe_kind("migration", figure="splinescope.report.paper:migration_figures")
@dataclass(frozen=True)
class MigrationProbe:
    """Where the linear regions lie relative to the decision boundary, in fixed planes.

    Each plane passes through three training points of different classes
    (:func:`plane_anchors`; :func:`~splinescope.geometry.plane_through` with ``margin``); its
    exact partition (:func:`~splinescope.geometry.regions_in_plane`) gives the
    region-boundary length per unit area binned by the unsigned distance to the decision
    boundary within the plane (:func:`~splinescope.geometry.migration_profile`). The bins are
    the same at every step: ``bins`` equal bins from 0 to ``max_distance × extent``; the band
    is ``|distance| ≤ band × extent``. Several planes are pooled (lengths and areas summed
    per bin). Planes whose square holds no decision boundary (one class predicted all over
    it, as at initialisation) have no distances: they are counted in ``n_planes_skipped`` and
    left out of the pool; with none left the profile keys are not emitted.

    Keys: ``band_length_share`` (share of region-boundary length within the band),
    ``band_area_share``, ``band_enrichment`` (their ratio: > 1 when region boundaries gather
    at the decision boundary), ``mean_density``, ``length_beyond`` (length beyond the last
    bin), ``n_regions`` and ``n_decision_segments`` (summed over planes), ``n_planes_skipped``;
    arrays ``density`` float64 ``[B]`` (length per area, (s, t) units⁻¹), ``boundary_length``
    and ``area`` ``[B]``, ``bin_edges`` ``[B + 1]`` (input units), and ``plane_png`` (the
    first plane's partition picture) when ``picture``.
    """

    n_planes: int = 1
    margin: float = 1.5
    band: float = 0.1
    bins: int = 16
    max_distance: float = 1.0
    resolution: int = 256
    picture: bool = True
    dpi: int = 60
    name: str = "migration"
    needs: tuple[str, ...] = field(default=("train",), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_planes < 1:
            raise SplinescopeError(f"n_planes: must be ≥ 1, got {self.n_planes}")
        for name in ("band", "max_distance"):
            if not getattr(self, name) > 0:
                raise SplinescopeError(f"{name}: must be > 0 (a fraction of the plane's extent)")
        if self.bins < 1:
            raise SplinescopeError(f"bins: must be ≥ 1, got {self.bins}")
        if self.margin <= 1:
            raise SplinescopeError(f"margin: must be > 1, got {self.margin}")

    def outputs(self) -> Outputs:
        scalars = (
            ScalarKey(
                "band_length_share",
                "share of region boundaries near the decision boundary",
                headline=True,
                role="migration_band_share",
            ),
            ScalarKey("band_area_share", "share of the plane's area near the decision boundary"),
            ScalarKey("band_enrichment", "region-boundary enrichment near the decision boundary"),
            ScalarKey("mean_density", "region-boundary length per area in the planes"),
            ScalarKey("length_beyond", "region-boundary length beyond the last distance bin"),
            ScalarKey("n_regions", "regions in the planes"),
            ScalarKey("n_decision_segments", "decision-boundary segments in the planes"),
            ScalarKey("n_planes_skipped", "planes without a decision boundary"),
        )
        arrays = [
            ArrayKey(
                "density", "region-boundary density by distance", "[B]", "float64", report=True
            ),
            ArrayKey("boundary_length", "region-boundary length by distance", "[B]", "float64"),
            ArrayKey("area", "plane area by distance", "[B]", "float64"),
            ArrayKey("bin_edges", "distance bin edges", "[B + 1]", "float64", report=True),
        ]
        if self.picture:
            arrays.append(
                ArrayKey(
                    "plane_png", "partition picture", "[bytes]", "uint8", image=True, report=True
                )
            )
        return Outputs(scalars, tuple(arrays))

    def planes(self, ctx: ProbeContext) -> list[tuple[tuple[int, int, int], Plane]]:
        """The fixed planes: anchor indices and plane (float64)."""
        out = []
        for triple in plane_anchors(ctx.y_train, self.n_planes):
            x = ctx.x_train[list(triple)].detach().to("cpu", torch.float64)
            out.append((triple, plane_through(x[0], x[1], x[2], margin=self.margin)))
        return out

    def profile(self, partition: PlanePartition) -> MigrationProfile:
        """The profile of one plane's partition with this probe's fixed bins and band."""
        extent = float(partition.extent)
        return migration_profile(
            partition,
            band=self.band * extent,
            bins=self.bins,
            max_distance=self.max_distance * extent,
            resolution=self.resolution,
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        scalars: dict[str, float] = {"n_regions": 0.0, "n_decision_segments": 0.0}
        arrays: dict[str, np.ndarray] = {}
        profiles: list[MigrationProfile] = []
        skipped = 0
        for k, (triple, plane) in enumerate(self.planes(ctx)):
            partition = regions_in_plane(
                model, plane.origin, plane.u, plane.v, plane.extent, anchors=plane.anchors
            )
            scalars["n_regions"] += partition.n_regions
            if k == 0 and self.picture:
                arrays["plane_png"] = self._picture(partition, triple, ctx)
            if len(partition.decision_boundary) == 0:
                skipped += 1
                continue
            profile = self.profile(partition)
            scalars["n_decision_segments"] += profile.n_decision_segments
            profiles.append(profile)
        scalars["n_planes_skipped"] = float(skipped)
        if profiles:
            pooled = PooledProfile.of(profiles)
            length_share = _share(pooled.band_length, pooled.total_length)
            area_share = _share(pooled.band_area, pooled.total_area)
            scalars.update(
                band_length_share=length_share,
                band_area_share=area_share,
                band_enrichment=_share(length_share, area_share),
                mean_density=_share(pooled.total_length, pooled.total_area),
                length_beyond=pooled.total_length - float(pooled.boundary_length.sum()),
            )
            arrays.update(
                density=pooled.density,
                boundary_length=pooled.boundary_length,
                area=pooled.area,
                bin_edges=pooled.bin_edges,
            )
        return ProbeResult(scalars=scalars, arrays=arrays)

    def _picture(self, partition: PlanePartition, triple, ctx: ProbeContext) -> np.ndarray:
        from splinescope.report.partition_plot import partition_figure_of

        labels = [f"train {i} (y={int(ctx.y_train[i])})" for i in triple]
        figure = partition_figure_of(
            partition, density=False, anchor_labels=labels, title=f"step {ctx.step}"
        )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=self.dpi)
        return np.frombuffer(buffer.getvalue(), dtype=np.uint8).copy()
