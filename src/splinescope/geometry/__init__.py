"""The input-space partition: local complexity, neighbourhoods, exact regions, activation codes."""

from splinescope.geometry.complexity import LocalComplexity, local_complexity
from splinescope.geometry.neighborhoods import ball_directions, cross_polytope, ortho_frame

__all__ = [
    "LocalComplexity",
    "ball_directions",
    "cross_polytope",
    "local_complexity",
    "ortho_frame",
]
