"""Unit states (the activation code) and the per-neighbourhood test "is this unit cut?"."""

from __future__ import annotations

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.nn.describe import LayerSelection, describe
from splinescope.nn.guard import measuring
from splinescope.nn.units import UnitLayer


def unit_states(layer: UnitLayer, raw: torch.Tensor) -> torch.Tensor:
    """States ``[B, n_units]`` of a layer's units from its raw tensor ``[B, *shape]``.

    int8 ``sign(a - t)`` in {-1, 0, 1} for each threshold ``t`` of activation/output units
    (``sign(0) = 0`` is a state of its own, as in the published code); int64 argmax index
    for max-pool units.
    """
    flat = raw.reshape(raw.shape[0], -1)
    if layer.kind == "argmax":
        return flat
    if layer.kind == "two_hinge":
        return torch.cat([torch.sign(flat - t).to(torch.int8) for t in layer.thresholds], dim=1)
    return torch.sign(flat).to(torch.int8)


def _not_constant(values: torch.Tensor, threshold: float) -> torch.Tensor:
    """``[B, V, U] -> [B, U]``: whether ``sign(values - threshold)`` differs across V."""
    low, high = values.amin(dim=1), values.amax(dim=1)  # 4x faster than aminmax on CPU
    constant = (low > threshold) | (high < threshold) | ((low == threshold) & (high == threshold))
    return ~constant


def count_cut_units(layer: UnitLayer, raw: torch.Tensor, n_vertices: int) -> torch.Tensor:
    """Number of units whose state is not the same at all vertices of each neighbourhood.

    Args:
        layer: the unit layer the tensor belongs to.
        raw: ``[B·V, *shape]``, the V vertices of each of B neighbourhoods consecutive.
        n_vertices: V.

    Returns:
        int64 ``[B]``. Identical to comparing ``sign(a)`` at every vertex with the first one
        (the published algorithm), without materialising the signs.
    """
    if (
        raw.dim() == 4
        and not raw.is_contiguous()
        and raw.is_contiguous(memory_format=torch.channels_last)
    ):
        raw = raw.permute(0, 2, 3, 1)  # a view: unit order is irrelevant to the count
    values = raw.reshape(raw.shape[0] // n_vertices, n_vertices, -1)
    if layer.kind == "argmax":
        return (values.amin(dim=1) != values.amax(dim=1)).sum(dim=1)
    thresholds = layer.thresholds if layer.kind == "two_hinge" else (0.0,)
    total = _not_constant(values, thresholds[0]).sum(dim=1)
    for t in thresholds[1:]:
        total += _not_constant(values, t).sum(dim=1)
    return total


def shared_frame_countable(layer: UnitLayer) -> bool:
    """Whether :func:`count_cut_units_on_frame` applies: units cut where their sign at 0 changes."""
    return layer.kind in ("hinge", "output", "smooth") and tuple(layer.thresholds) == (0.0,)


def frame_reach(frame_values: torch.Tensor) -> torch.Tensor:
    """``[K, *shape] -> [*shape]``: ``max_k |f_k|``, how far a unit moves over the frame."""
    return frame_values.abs().amax(dim=0)


def count_cut_units_on_frame(center: torch.Tensor, reach: torch.Tensor) -> torch.Tensor | None:
    """Cut units of a layer whose values at the vertices are ``fl(c ± f_k)``, from ``c`` alone.

    Args:
        center: ``[B, *shape]``, the layer's values ``c`` at the neighbourhoods' centres.
        reach: ``[*shape]``, :func:`frame_reach` of the frame's values ``f_k`` (vertex
            ``x ± r·u_k`` has the value ``fl(c ± f_k)``; the centre, if it is a vertex, ``c``).

    Returns:
        int64 ``[B]``, bit-identical to :func:`count_cut_units` on the vertex values, or None
        where that cannot be guaranteed (values within a few ulps of the underflow threshold,
        where flush-to-zero arithmetic could zero ``fl(c ± f_k)``): count on the vertices then.

    Why it is exact: IEEE addition is correctly rounded with gradual underflow, so
    ``sign(fl(c ± f)) = sign(c ± f)``. The signs over all vertices are the same iff
    ``c > max_k |f_k|`` (all +), ``c < -max_k |f_k|`` (all −) or ``c = max_k |f_k| = 0``
    (all 0, ``sign(0)`` being a state of its own); the centre never adds a state. NaN and
    infinities follow the vertex test's comparisons case by case (both count the unit as cut
    whenever some vertex value is NaN).
    """
    c = center.reshape(center.shape[0], -1)
    m = reach.reshape(1, -1).to(c.dtype)
    info = torch.finfo(c.dtype)
    bound = info.tiny / info.eps * 4
    size = torch.maximum(c.abs(), m)
    if bool(((size < bound) & (size > 0)).any()):
        return None
    constant = (c > m) | (c < -m) | ((c == 0) & (m == 0))
    return (~constant).sum(dim=1)


def record_states(
    model: nn.Module,
    x: torch.Tensor,
    layers: LayerSelection = None,
    batch_size: int | None = None,
) -> dict[str, torch.Tensor]:
    """The state of every partition unit for each input: the activation code, per layer.

    Args:
        model: the network (measured in eval mode, left exactly as it was).
        x: inputs ``[N, *input_shape]`` on the model's device.
        layers: selection as in :func:`splinescope.nn.describe`.
        batch_size: inputs per forward pass (default 1024).

    Returns:
        ``{layer name: states [N, n_units]}`` — int8 signs in {-1, 0, 1} (two columns blocks
        per neuron for two-hinge units), int64 argmax indices for max-pool units.
    """
    if x.shape[0] == 0:
        raise SplinescopeError("x: empty input set")
    units = describe(model, x[:1], layers, argument="x")
    batch_size = batch_size or 1024
    chunks: list[list[torch.Tensor]] = [[] for _ in units.layers]

    def keep(index: int, raw: torch.Tensor) -> None:
        chunks[index].append(unit_states(units.layers[index], raw))

    with measuring(model):
        for start in range(0, x.shape[0], batch_size):
            units.runner.run(x[start : start + batch_size], keep, need_output=False)
    states = {
        layer.name: torch.cat(parts) for layer, parts in zip(units.layers, chunks, strict=True)
    }
    for name, rows in states.items():
        if rows.shape[0] != x.shape[0]:
            raise SplinescopeError(
                f"layers: {name!r} was read for {rows.shape[0]} of {x.shape[0]} inputs "
                "(a module called more or fewer times than at describe time?)"
            )
    return states
