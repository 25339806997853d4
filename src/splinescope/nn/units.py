"""Descriptions of partition-defining units: what they are, where they were found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

KINDS = ("hinge", "two_hinge", "smooth", "argmax", "output")


@dataclass(frozen=True)
class UnitLayer:
    """One group of partition-defining units (one activation call, pool, or named module output).

    Attributes:
        name: stable name — the module's qualified name (``"net.1"``; ``"net.1#2"`` for the
            third call of a shared module) or the ``torch.fx`` node name of a functional call
            (``"relu_1"``).
        kind: one of ``"hinge"``, ``"two_hinge"``, ``"smooth"`` (sign used), ``"argmax"``,
            ``"output"`` (see :mod:`splinescope.nn.catalog`).
        n_units: units per input sample (a two-hinge neuron counts twice).
        shape: per-sample shape of the tensor the units are read from.
        found_by: ``"fx"`` (traced graph) or ``"hook"`` (module hooks).
        source: what produced it, e.g. ``"nn.ReLU"``, ``"F.relu"``, ``"Tensor.relu"``.
        thresholds: the breakpoints of the activation, in pre-activation units.
    """

    name: str
    kind: str
    n_units: int
    shape: tuple[int, ...]
    found_by: str
    source: str
    thresholds: tuple[float, ...] = (0.0,)

    @property
    def smooth(self) -> bool:
        """True for smooth activations whose sign is used as if they had a hinge at 0."""
        return self.kind == "smooth"


@dataclass(frozen=True)
class PartitionUnits:
    """The units of a model that define its input-space partition, in execution order.

    Attributes:
        layers: the selected unit layers.
        skipped: ``(module or node name, reason)`` for whatever could shape the partition but
            is not read as units: non-partition or unsupported activations (modules and
            functional calls), activation modules never called, and opaque modules whose
            insides the trace does not see.
        traced: whether ``torch.fx`` traced the model (else module hooks were used).
        trace_error: why tracing failed, when it did (functional activations are then invisible).
    """

    layers: tuple[UnitLayer, ...]
    skipped: tuple[tuple[str, str], ...]
    traced: bool
    trace_error: str | None = None
    runner: Any = field(default=None, repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        """Layer names in execution order."""
        return [layer.name for layer in self.layers]

    @property
    def n_units(self) -> int:
        """Total number of units over all layers (per input sample)."""
        return sum(layer.n_units for layer in self.layers)

    def to_frame(self) -> pd.DataFrame:
        """One row per layer: name, kind, n_units, shape, found_by, source, thresholds."""
        return pd.DataFrame(
            [
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "n_units": layer.n_units,
                    "shape": layer.shape,
                    "found_by": layer.found_by,
                    "source": layer.source,
                    "thresholds": layer.thresholds,
                }
                for layer in self.layers
            ]
        )
