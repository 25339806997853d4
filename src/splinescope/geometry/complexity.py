"""Local complexity: how many neurons' hyperplanes cut a small neighbourhood of each input.

Humayun, Balestriero, Baraniuk, "Deep Networks Always Grok and Here is Why" (ICML 2024).
For each point x, the neighbourhood is the cross-polytope with vertices ``x ± r·u_k``; a unit
is *cut* when the sign of its pre-activation is not the same at all vertices (``sign(0) = 0``
is a state of its own, as in the published code). LC of a layer is the number of cut units;
the total is the sum over layers.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.neighborhoods import ball_directions, cross_polytope, ortho_frame
from splinescope.nn.describe import LayerSelection, describe
from splinescope.nn.guard import measuring
from splinescope.nn.states import (
    count_cut_units,
    count_cut_units_on_frame,
    frame_reach,
    shared_frame_countable,
)

VARIANT = (
    "per-layer count of units whose pre-activation sign (sign(0) a state of its own) is not "
    "constant over the neighbourhood's vertices; total = sum over layers"
)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
DEFAULT_MEMORY_BUDGET_MB = 24.0


@dataclass(frozen=True)
class LocalComplexity:
    """Per-point, per-layer local complexity and the parameters that produced it.

    Attributes:
        counts: int64 ``[N, L]`` — cut units of each layer in each point's neighbourhood.
        layer_names, layer_kinds, units_per_layer: per layer, in execution order.
        radius: r, in input units. n_vertices: vertices per neighbourhood (centre included
            when ``include_center``). neighborhood: ``"ortho"``, ``"ball"`` or ``"hull"``.
        seed: seed of the directions. dtype: the dtype computed in.
    """

    counts: torch.Tensor
    layer_names: tuple[str, ...]
    layer_kinds: tuple[str, ...]
    units_per_layer: tuple[int, ...]
    radius: float
    n_vertices: int
    neighborhood: str
    seed: int
    dtype: str
    include_center: bool
    variant: str = field(default=VARIANT)

    @property
    def fractions(self) -> torch.Tensor:
        """``[N, L]`` float64: cut units as a fraction of each layer's units."""
        units = torch.tensor(self.units_per_layer, dtype=torch.float64)
        return self.counts.to(torch.float64) / units

    @property
    def total(self) -> torch.Tensor:
        """``[N]``: cut units summed over layers."""
        return self.counts.sum(dim=1)

    @property
    def mean_total(self) -> float:
        """Mean over points of the total count."""
        return float(self.total.to(torch.float64).mean())

    @property
    def sem_total(self) -> float:
        """Standard error of :attr:`mean_total` (sample std / sqrt(N); 0 for one point)."""
        return _sem(self.total.to(torch.float64))

    @property
    def mean_per_layer(self) -> dict[str, float]:
        """Mean count per layer."""
        means = self.counts.to(torch.float64).mean(dim=0)
        return {name: float(m) for name, m in zip(self.layer_names, means, strict=True)}

    @property
    def sem_per_layer(self) -> dict[str, float]:
        """Standard error of each layer's mean count."""
        columns = self.counts.to(torch.float64).T
        return {name: _sem(c) for name, c in zip(self.layer_names, columns, strict=True)}

    def summary(self) -> pd.DataFrame:
        """One row per layer and a ``total`` row: units, mean, sem, mean fraction, quantiles."""
        counts = self.counts.to(torch.float64).numpy()
        rows = []
        columns = [*zip(self.layer_names, self.units_per_layer, counts.T, strict=True)]
        columns.append(("total", sum(self.units_per_layer), counts.sum(axis=1)))
        for name, units, values in columns:
            row = {
                "layer": name,
                "units": units,
                "mean": float(values.mean()),
                "sem": _sem(torch.from_numpy(values)),
                "mean_fraction": float(values.mean() / units),
            }
            row.update(
                {
                    f"q{int(q * 100):02d}": float(v)
                    for q, v in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True)
                }
            )
            rows.append(row)
        return pd.DataFrame(rows)

    def to_frame(self) -> pd.DataFrame:
        """Per-point table: one column of counts per layer, then ``total``."""
        frame = pd.DataFrame(self.counts.numpy(), columns=list(self.layer_names))
        frame["total"] = frame.sum(axis=1)
        frame.index.name = "point"
        return frame


def _sem(values: torch.Tensor) -> float:
    n = values.numel()
    return float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0


def _as_tensor(value: object, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise SplinescopeError(
        f"{name}: expected a torch.Tensor or numpy array, got {type(value).__name__}"
    )


def _working_model(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """The model itself, or a copy on ``device``/``dtype`` when those differ (never modified)."""
    tensors = [*model.parameters(), *model.buffers()]
    floating = [t for t in tensors if t.is_floating_point()]
    if all(t.device == device for t in tensors) and all(t.dtype == dtype for t in floating):
        return model
    return copy.deepcopy(model).to(device=device, dtype=dtype)


def _validate(points, radius, n_vertices, neighborhood, hull) -> None:
    if points.dim() < 2:
        raise SplinescopeError(
            f"points: expected a batch [N, *input_shape], got shape {tuple(points.shape)}"
        )
    if points.shape[0] == 0:
        raise SplinescopeError("points: the point set is empty")
    if not torch.isfinite(points).all():
        raise SplinescopeError("points: contains NaN or inf")
    if not isinstance(radius, (int, float)) or not math.isfinite(radius) or radius <= 0:
        raise SplinescopeError(f"radius: must be a finite number > 0, got {radius!r}")
    if neighborhood not in ("ortho", "ball"):
        raise SplinescopeError(f"neighborhood: must be 'ortho' or 'ball', got {neighborhood!r}")
    if hull is None:
        if not isinstance(n_vertices, int) or n_vertices < 2 or n_vertices % 2:
            raise SplinescopeError(
                f"n_vertices: must be an even integer ≥ 2 (pairs ±u), got {n_vertices!r}"
            )
        dim = int(torch.Size(points.shape[1:]).numel())
        if neighborhood == "ortho" and n_vertices // 2 > dim:
            raise SplinescopeError(
                f"n_vertices: an ortho frame has n_vertices/2 = {n_vertices // 2} orthonormal "
                f"directions, more than the input dimension {dim}; use fewer vertices or "
                "neighborhood='ball'"
            )
        return
    expected = (points.shape[0], hull.shape[1] if hull.dim() > 1 else -1, *points.shape[1:])
    if hull.dim() != points.dim() + 1 or tuple(hull.shape) != expected or hull.shape[1] < 1:
        raise SplinescopeError(
            f"hull: expected shape [N, V, *input_shape] = [{points.shape[0]}, V, "
            f"{', '.join(map(str, points.shape[1:]))}] to match points {tuple(points.shape)}, "
            f"got {tuple(hull.shape)}"
        )
    if not torch.isfinite(hull).all():
        raise SplinescopeError("hull: contains NaN or inf")


def _shift_by_frame(
    center: torch.Tensor,
    frame: torch.Tensor,
    include_center: bool,
    channels_last: bool,
    workspace: dict | None = None,
) -> torch.Tensor:
    """``[B, *S]`` centres and ``[K, *S]`` frame -> ``[B·V, *S]`` values ``c ± f_k`` (+ ``c``).

    Written straight into one buffer in the published vertex order (no concatenation copies);
    with ``channels_last`` (4-D values) the buffer is laid out NHWC. With a ``workspace``
    dict, the buffer is kept there and reused by the next call (memory already mapped).
    """
    n_points, n_directions = center.shape[0], frame.shape[0]
    n_vertices = 2 * n_directions + int(include_center)
    if channels_last:
        center, frame = center.permute(0, 2, 3, 1), frame.permute(0, 2, 3, 1)
    shape = (n_points, n_vertices, *center.shape[1:])
    numel = int(torch.Size(shape).numel())
    flat = None if workspace is None else workspace.get("vertices")
    if flat is None or flat.numel() < numel or flat.dtype != center.dtype:
        flat = center.new_empty(numel)
        if workspace is not None:
            workspace["vertices"] = flat
    out = flat[:numel].view(shape)
    anchor = center.unsqueeze(1)
    torch.add(anchor, frame, out=out[:, :n_directions])
    torch.sub(anchor, frame, out=out[:, n_directions : 2 * n_directions])
    if include_center:
        out[:, -1] = center
    out = out.flatten(0, 1)
    return out.permute(0, 3, 1, 2) if channels_last else out


def _use_channels_last(model: nn.Module, points: torch.Tensor, requested: bool | None) -> bool:
    """NHWC pays on CPU for conv nets (oneDNN convs and max-pool: 1.7x on W2 of the benchmark)."""
    if requested is not None:
        if requested and points.dim() != 4:
            raise SplinescopeError(
                f"channels_last: needs 4-D image points [N, C, H, W], got shape {tuple(points.shape)}"
            )
        return requested
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return points.dim() == 4 and points.device.type == "cpu" and has_conv


def default_batch_size(
    per_vertex_numel: int, n_vertices: int, itemsize: int, memory_budget_mb: float
) -> int:
    """Points per forward pass so that the largest activation of a batch fits the budget.

    The default budget (24 MB) keeps every large tensor under glibc's 32 MB mmap threshold,
    so batches reuse heap memory instead of page-faulting fresh mappings (FINDINGS.md).
    """
    per_point = max(1, per_vertex_numel * n_vertices * itemsize)
    return max(1, int(memory_budget_mb * 2**20) // per_point)


def local_complexity(
    model: nn.Module,
    points: torch.Tensor,
    *,
    radius: float,
    n_vertices: int = 50,
    neighborhood: str = "ortho",
    hull: torch.Tensor | None = None,
    layers: LayerSelection = None,
    include_center: bool = False,
    seed: int = 0,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    channels_last: bool | None = None,
) -> LocalComplexity:
    """Local complexity of ``model`` around each of ``points``.

    Args:
        model: any network taking ``[B, *input_shape]``; measured in eval mode and left
            exactly as it was (modes, parameters, buffers, grads, global RNG states).
        points: ``[N, *input_shape]``.
        radius: r > 0, the neighbourhood's radius in input units.
        n_vertices: V = 2K vertices ``x ± r·u_k`` (even).
        neighborhood: ``"ortho"`` — K orthonormal directions shared by all points (the
            published cross-polytope); ``"ball"`` — K independent random unit directions per point.
        hull: a precomputed ``[N, V, *input_shape]`` vertex tensor instead of a neighbourhood.
        layers: which units to count (see :func:`splinescope.nn.describe`); default all.
        include_center: add the centre x as a vertex.
        seed: seed of the directions (a private generator; the global RNG is untouched).
        batch_size: points per forward pass; default from ``memory_budget_mb``.
        device, dtype: where and in what precision to compute (default: the model's). A model
            on another device/dtype is copied, never converted in place.
        memory_budget_mb: target size of the largest activation tensor of one batch.
        channels_last: feed image vertices in NHWC layout (default: on for conv nets on CPU
            with a generated neighbourhood; off with ``hull=``, so that counts are bit-identical
            to the published algorithm run on the same hull). Results do not depend on it
            beyond floating-point rounding.

    Returns:
        :class:`LocalComplexity` with counts ``[N, L]``.
    """
    points = _as_tensor(points, "points")
    hull = None if hull is None else _as_tensor(hull, "hull")
    _validate(points, radius, n_vertices, neighborhood, hull)
    reference = next(iter([*model.parameters(), *model.buffers()]), None)
    device = (
        torch.device(device)
        if device is not None
        else (reference.device if reference is not None else torch.device("cpu"))
    )
    if dtype is None:
        dtype = (
            reference.dtype
            if reference is not None and reference.is_floating_point()
            else torch.float32
        )
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise SplinescopeError(f"batch_size: must be a positive integer, got {batch_size!r}")
    work = _working_model(model, device, dtype)
    points = points.to(device=device, dtype=dtype)
    units = describe(work, points[:1], layers, argument="points")
    runner = units.runner
    n = points.shape[0]
    input_shape = tuple(points.shape[1:])
    if hull is not None:
        n_directions = 0
        total_vertices = hull.shape[1] + int(include_center)
    else:
        n_directions = n_vertices // 2
        total_vertices = n_vertices + int(include_center)
    if batch_size is None:
        widest = max(
            [int(torch.Size(input_shape).numel())]
            + [int(torch.Size(layer.shape).numel()) for layer in units.layers]
        )
        batch_size = default_batch_size(
            widest, total_vertices, points.element_size(), memory_budget_mb
        )
    counts = torch.zeros(n, len(units.layers), dtype=torch.int64)
    if channels_last is None and hull is not None:
        channels_last = False  # the user's hull runs as given: parity with the published code
    nhwc = _use_channels_last(work, points, channels_last)

    with measuring(model), measuring(work):
        frame = None
        frame_output = None
        on_frame: dict[int, torch.Tensor] = {}  # layer index -> reach, counted from the centres
        workspace: dict = {}  # buffers reused from batch to batch
        if hull is None and neighborhood == "ortho":
            frame = ortho_frame(input_shape, n_directions, seed=seed, dtype=dtype, device=device)
            if runner.first_affine is not None:
                frame_output = radius * runner.first_affine.linear_part(runner.prefix(frame))
                reach = frame_reach(frame_output)
                for index in runner.first_affine_taps():
                    if shared_frame_countable(units.layers[index]):
                        on_frame[index] = reach
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            centers = points[start:stop]
            done: set[int] = set()

            def on_unit(index: int, raw: torch.Tensor, start=start, stop=stop, done=done) -> None:
                if index in done:
                    return
                layer = units.layers[index]
                counts[start:stop, index] = count_cut_units(layer, raw, total_vertices).cpu()

            if frame_output is not None:
                center_output = runner.first_affine.module(runner.prefix(centers))
                for index, reach in on_frame.items():
                    count = count_cut_units_on_frame(center_output, reach)
                    if count is not None:
                        counts[start:stop, index] = count.cpu()
                        done.add(index)
                nhwc_output = nhwc and center_output.dim() == 4
                vertex_output = _shift_by_frame(
                    center_output, frame_output, include_center, nhwc_output, workspace
                )
                runner.run(
                    None,
                    on_unit,
                    injected=vertex_output,
                    need_output=False,
                    inplace=True,
                    workspace=workspace,
                )
                continue
            if hull is not None:
                vertices = hull[start:stop].to(device=device, dtype=dtype)
                if include_center:
                    vertices = torch.cat([vertices, centers.unsqueeze(1)], dim=1)
            else:
                directions = frame
                if directions is None:
                    index = torch.arange(start, stop)
                    directions = ball_directions(
                        index, n_directions, input_shape, seed=seed, dtype=dtype, device=device
                    )
                vertices = cross_polytope(centers, directions, radius, include_center)
            vertices = vertices.flatten(0, 1)
            if nhwc:
                vertices = vertices.contiguous(memory_format=torch.channels_last)
            runner.run(vertices, on_unit, need_output=False, inplace=True, workspace=workspace)

    return LocalComplexity(
        counts=counts,
        layer_names=tuple(units.names),
        layer_kinds=tuple(layer.kind for layer in units.layers),
        units_per_layer=tuple(layer.n_units for layer in units.layers),
        radius=float(radius),
        n_vertices=total_vertices,
        neighborhood="hull" if hull is not None else neighborhood,
        seed=int(seed),
        dtype=str(dtype).replace("torch.", ""),
        include_center=bool(include_center),
    )
