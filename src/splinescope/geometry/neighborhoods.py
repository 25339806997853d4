"""Neighbourhoods of inputs: cross-polytopes {x ± r·u_k} on shared or per-point directions.

Vertex order matches the published local-complexity code (Humayun et al., ICML 2024):
``[x + r·u_1, ..., x + r·u_K, x − r·u_1, ..., x − r·u_K]`` and, optionally, ``x`` last.

Directions come from a private ``torch.Generator`` whose seed is derived from the user's seed
through a hash, so a frame can never coincide with a model initialised right after
``torch.manual_seed(seed)`` (FINDINGS.md: that collision made LC 2.1x too high).
"""

from __future__ import annotations

import hashlib

import torch

from splinescope.errors import SplinescopeError


def derived_seed(seed: int, purpose: str, index: int = 0) -> int:
    """A 63-bit seed for ``purpose`` that is independent of the user's global seed stream."""
    digest = hashlib.sha256(f"splinescope:{purpose}:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def ortho_frame(
    input_shape: tuple[int, ...],
    n_directions: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``n_directions`` orthonormal directions ``[K, *input_shape]`` (rows orthonormal, float64 QR).

    Drawn on the CPU from a private generator, so the frame is the same on every device.
    """
    dim = int(torch.Size(input_shape).numel())
    if not isinstance(n_directions, int) or not 1 <= n_directions <= dim:
        raise SplinescopeError(
            f"n_directions: an orthonormal frame in dimension {dim} has 1 to {dim} directions, "
            f"got {n_directions!r}"
        )
    rows = _frame_rows(dim, n_directions, int(seed))
    return rows.reshape(n_directions, *input_shape).to(device=device, dtype=dtype, copy=True)


_FRAME_CACHE: dict[tuple[int, int, int], torch.Tensor] = {}
_FRAME_CACHE_BYTES = 64 * 2**20


def _frame_rows(dim: int, n_directions: int, seed: int) -> torch.Tensor:
    """float64 CPU ``[K, dim]`` orthonormal rows, kept for reuse (a probe asks for the same
    frame at every step; the QR costs tens of ms at D = 784) up to 64 MB of frames."""
    key = (dim, n_directions, seed)
    rows = _FRAME_CACHE.get(key)
    if rows is None:
        generator = torch.Generator().manual_seed(derived_seed(seed, "ortho-frame"))
        gaussian = torch.randn(dim, n_directions, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(gaussian)
        rows = (q * torch.sign(torch.diagonal(r))).T.contiguous()  # unique QR: Haar frame
        size = rows.numel() * rows.element_size()
        while (
            _FRAME_CACHE
            and sum(t.numel() * t.element_size() for t in _FRAME_CACHE.values()) + size
            > _FRAME_CACHE_BYTES
        ):
            _FRAME_CACHE.pop(next(iter(_FRAME_CACHE)))
        if size <= _FRAME_CACHE_BYTES:
            _FRAME_CACHE[key] = rows
    return rows


def ball_directions(
    point_indices: torch.Tensor,
    n_directions: int,
    input_shape: tuple[int, ...],
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Independent random unit directions for each point: ``[B, K, *input_shape]``.

    Point ``i``'s directions depend only on ``(seed, i)``, so results do not depend on batching.
    """
    dim = int(torch.Size(input_shape).numel())
    if not isinstance(n_directions, int) or n_directions < 1:
        raise SplinescopeError(f"n_directions: must be a positive integer, got {n_directions!r}")
    out = torch.empty(len(point_indices), n_directions, dim, dtype=torch.float64)
    generator = torch.Generator()
    for row, index in enumerate(point_indices.tolist()):
        generator.manual_seed(derived_seed(seed, "ball", index))
        out[row] = torch.randn(n_directions, dim, generator=generator, dtype=torch.float64)
    out /= out.norm(dim=-1, keepdim=True)
    return out.reshape(len(point_indices), n_directions, *input_shape).to(
        device=device, dtype=dtype
    )


def cross_polytope(
    points: torch.Tensor, directions: torch.Tensor, radius: float, include_center: bool = False
) -> torch.Tensor:
    """Vertices ``[N, V, *shape]`` of ``{x ± r·u_k}`` (V = 2K, + 1 with the centre last).

    Args:
        points: centres ``[N, *shape]``.
        directions: ``[K, *shape]`` shared by all points, or ``[N, K, *shape]`` per point.
        radius: r > 0, in input units.
        include_center: append the centre as the last vertex.
    """
    _check_directions(points, directions)
    step = radius * (directions if directions.dim() > points.dim() else directions.unsqueeze(0))
    centers = points.unsqueeze(1)
    parts = [centers + step, centers - step]
    if include_center:
        parts.append(centers)
    return torch.cat(parts, dim=1)


def _check_directions(points: torch.Tensor, directions: torch.Tensor) -> None:
    """Directions must be ``[K, *shape]`` or ``[N, K, *shape]``; never broadcast silently."""
    shape = tuple(points.shape[1:])
    shared = directions.dim() == points.dim() and tuple(directions.shape[1:]) == shape
    per_point = (
        directions.dim() == points.dim() + 1
        and directions.shape[0] == points.shape[0]
        and tuple(directions.shape[2:]) == shape
    )
    if not (shared or per_point) or directions.shape[-points.dim()] < 1:
        raise SplinescopeError(
            f"directions: expected [K, {', '.join(map(str, shape))}] shared by all points or "
            f"[{points.shape[0]}, K, {', '.join(map(str, shape))}] per point, "
            f"got {tuple(directions.shape)}"
        )
