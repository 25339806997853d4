"""Exact partition geometry of piecewise-linear networks: the public entry points.

- :func:`regions_on_segment` — activation regions along a segment (:mod:`.segment`).
- :func:`regions_in_plane` / :func:`plane_through` — regions in a planar slice (:mod:`.plane`).
- :func:`local_affine_map` — the affine map of the region containing a point (:mod:`.affine`).

All of them trace the model with ``torch.fx`` and propagate affine maps in float64 through
Linear, Conv1d/2d/3d, BatchNorm (eval, running statistics), average and max pooling,
Flatten/reshape/view, residual additions, concatenations and ReLU/LeakyReLU/PReLU/RReLU/
Hardtanh/ReLU6 (modules, ``F.relu``, ``torch.relu`` and ``x.relu()``). Smooth activations
(GELU, SiLU, ...) and any other module are rejected with an error that names them.
"""

from splinescope.geometry.affine import LocalAffineMap, local_affine_map, point_codes
from splinescope.geometry.plane import Plane, PlanePartition, plane_through, regions_in_plane
from splinescope.geometry.segment import SegmentPartition, regions_on_segment

__all__ = [
    "LocalAffineMap",
    "Plane",
    "PlanePartition",
    "SegmentPartition",
    "local_affine_map",
    "plane_through",
    "point_codes",
    "regions_in_plane",
    "regions_on_segment",
]
