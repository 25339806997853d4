"""The input-space partition: local complexity, neighbourhoods, exact regions, activation codes."""

from splinescope.geometry import codes
from splinescope.geometry.boundary import BoundaryPoints, decision_boundary_points
from splinescope.geometry.complexity import LocalComplexity, local_complexity
from splinescope.geometry.exact import (
    LocalAffineMap,
    Plane,
    PlanePartition,
    SegmentPartition,
    local_affine_map,
    plane_through,
    regions_in_plane,
    regions_on_segment,
)
from splinescope.geometry.migration import MigrationProfile, migration_profile
from splinescope.geometry.neighborhoods import ball_directions, cross_polytope, ortho_frame

__all__ = [
    "BoundaryPoints",
    "LocalAffineMap",
    "LocalComplexity",
    "MigrationProfile",
    "Plane",
    "PlanePartition",
    "SegmentPartition",
    "ball_directions",
    "codes",
    "cross_polytope",
    "decision_boundary_points",
    "local_affine_map",
    "local_complexity",
    "migration_profile",
    "ortho_frame",
    "plane_through",
    "regions_in_plane",
    "regions_on_segment",
]
