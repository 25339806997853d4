"""Representation similarity over training: layer x layer CKA, and each layer's CKA with
itself at the first measured step and at the previous one."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.probe import ProbeContext, ProbeResult
from splinescope.monitor.probes._layers import Split, layer_names, layer_outputs, split_points
from splinescope.monitor.registry import ArrayKey, Outputs, ScalarKey, probe_kind
from splinescope.representation import cka_matrix, feature_gram, gram_cka

_FIGURES = "splinescope.report.representation_figures"


def even_batches(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """``x`` cut into ``ceil(n / batch_size)`` batches whose sizes differ by at most one
    (no point dropped, no tiny last batch)."""
    if not (isinstance(batch_size, int) and batch_size >= 4):
        raise SplinescopeError(f"batch_size: expected an integer >= 4, got {batch_size!r}")
    n = x.shape[0]
    return list(torch.tensor_split(x, max(1, -(-n // batch_size))))


@probe_kind("cka", figure=f"{_FIGURES}:cka_figures")
@dataclass(frozen=True)
class LayerCKAProbe:
    """Layer x layer minibatch CKA (Nguyen et al. 2021: unbiased HSIC summed over batches) of
    the model at this step, on a fixed subset of one split.

    Args:
        layers: module names (default: every activation module, in execution order).
        split: which points: ``"train"``, ``"test"`` or ``"random"``.
        n_points: size of the fixed seeded subset (``None``: all points of the split).
        batch_size: points per CKA batch (the subset is cut into near-equal batches, >= 4).
        kernel: ``"linear"`` or ``"rbf"`` (median-distance bandwidth per batch).
        conv: conv features ``"flatten"`` or position-``"mean"``.
        seed: seed of the subset.

    Keys: ``mean_offdiag`` (mean CKA over pairs of distinct layers), ``n_clipped``; arrays
    ``matrix`` float64 ``[L, L]`` and ``layers`` ``[L]`` (the layer names).
    """

    layers: tuple[str, ...] | None = None
    split: Split = "train"
    n_points: int | None = 512
    batch_size: int = 128
    kernel: Literal["linear", "rbf"] = "linear"
    conv: Literal["flatten", "mean"] = "flatten"
    seed: int = 0
    name: str = "cka"

    def __post_init__(self) -> None:
        even_batches(torch.empty(0), self.batch_size)  # checks batch_size
        if self.n_points is not None and self.n_points < 4:
            raise SplinescopeError(f"n_points: expected >= 4 or none, got {self.n_points!r}")

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.split,)

    def outputs(self) -> Outputs:
        return Outputs(
            (
                ScalarKey("mean_offdiag", f"mean {self.kernel} CKA between distinct layers"),
                ScalarKey("n_clipped", "CKA entries clipped to [0, 1]"),
            ),
            (
                ArrayKey(
                    "matrix",
                    f"layer x layer {self.kernel} minibatch CKA on {self.split} points",
                    "[L, L]",
                    "float64",
                    report=True,
                ),
                ArrayKey("layers", "layer names of the matrix rows", "[L]", "str", report=True),
            ),
        )

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        x, _ = split_points(ctx, self.split, self.n_points, self.seed)
        names = layer_names(model, x, self.layers)
        if len(names) < 2:
            raise SplinescopeError(f"layers: a layer x layer matrix needs >= 2 layers, got {names}")
        result = cka_matrix(
            model,
            model,
            even_batches(x, self.batch_size),
            names,
            names,
            kernel=self.kernel,
            conv=self.conv,
        )
        values = result.values.numpy().astype(np.float64)
        off = ~np.eye(len(names), dtype=bool)
        return ProbeResult(
            scalars={
                "mean_offdiag": float(values[off].mean()),
                "n_clipped": float(result.n_clipped),
            },
            arrays={"matrix": values, "layers": np.array(names, dtype=str)},
        )


def _encode(g: torch.Tensor) -> str:
    return base64.b64encode(g.cpu().numpy().astype("<f8").tobytes()).decode("ascii")


def _decode(text: str, n: int) -> torch.Tensor:
    raw = np.frombuffer(base64.b64decode(text), dtype="<f8")
    if raw.size != n * n:
        raise SplinescopeError(f"state: a stored Gram has {raw.size} numbers, expected {n}x{n}")
    return torch.from_numpy(raw.reshape(n, n).copy())


@probe_kind("cka_drift", figure=f"{_FIGURES}:cka_drift_figures")
@dataclass(frozen=True)
class CKADriftProbe:
    """Linear CKA of each layer with the same layer at the first measured step
    (``init/<layer>``, the initialisation when the run measures step 0) and at the previous
    measured step (``prev/<layer>``), on a fixed subset of one split.

    The probe keeps the centred float64 Grams ``[n, n]`` of the subset at those steps (never
    the features); :meth:`state_dict` carries them across a resume. At the first measurement
    both references are the measurement itself (CKA 1; ``prev_step`` equals the step).

    Args:
        layers: module names (default: every activation module, in execution order).
        split: which points; n_points: size of the fixed seeded subset (the state holds
            three ``n x n`` Grams per layer at most).
        estimator: ``"unbiased"`` (Song et al. 2012) or ``"biased"`` (Gretton et al. 2005) HSIC.
        conv: conv features ``"flatten"`` or position-``"mean"``.
        batch_size: points per forward; seed: seed of the subset.

    Keys: ``init/<layer>``, ``prev/<layer>``, ``init_step``, ``prev_step`` (the steps compared
    against).
    """

    layers: tuple[str, ...] | None = None
    split: Split = "train"
    n_points: int = 128
    estimator: Literal["unbiased", "biased"] = "unbiased"
    conv: Literal["flatten", "mean"] = "flatten"
    batch_size: int = 1024
    seed: int = 0
    name: str = "cka_drift"
    _refs: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.n_points, int) and self.n_points >= 4):
            raise SplinescopeError(f"n_points: expected an integer >= 4, got {self.n_points!r}")

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.split,)

    def outputs(self) -> Outputs:
        est = f"linear CKA ({self.estimator} HSIC)"
        return Outputs(
            (
                ScalarKey("init/*", f"{est} with the layer at the first measured step"),
                ScalarKey("prev/*", f"{est} with the layer at the previous measured step"),
                ScalarKey("init_step", "step of the first measurement (CKA reference)"),
                ScalarKey("prev_step", "step of the previous measurement (CKA reference)"),
            )
        )

    def grams(self, model: nn.Module, ctx: ProbeContext) -> dict[str, torch.Tensor]:
        """The centred Gram ``[n, n]`` (float64, CPU) of each layer on the fixed subset."""
        x, _ = split_points(ctx, self.split, self.n_points, self.seed)
        outs = layer_outputs(model, x, self.layers, self.batch_size)
        return {name: feature_gram(f, conv=self.conv).cpu() for name, f in outs.items()}

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
        step = int(ctx.step)
        now = self.grams(model, ctx)
        last = self._refs.get("last")
        if last is not None and step < last[0]:
            raise SplinescopeError(
                f"step: {step} is before the last measured step {last[0]}; the probe's "
                "references would come from the future"
            )
        prev = self._refs.get("prev") if last is not None and last[0] == step else last
        init = self._refs.get("init") or (step, now)
        prev = prev or (step, now)
        for which, (ref_step, ref) in (("init", init), ("prev", prev)):
            if list(ref) != list(now) or any(ref[k].shape != now[k].shape for k in now):
                raise SplinescopeError(
                    f"layers: the {which} reference (step {ref_step}) holds layers "
                    f"{list(ref)} of {next(iter(ref.values())).shape[0]} points; this step "
                    f"has {list(now)} of {next(iter(now.values())).shape[0]}"
                )
        scalars: dict[str, float] = {"init_step": float(init[0]), "prev_step": float(prev[0])}
        for layer, g in now.items():
            scalars[f"init/{layer}"] = gram_cka(init[1][layer], g, estimator=self.estimator).value
        for layer, g in now.items():
            scalars[f"prev/{layer}"] = gram_cka(prev[1][layer], g, estimator=self.estimator).value
        self._refs.update(init=init, prev=None if prev[0] == step else prev, last=(step, now))
        return ProbeResult(scalars=scalars)

    def state_dict(self) -> dict[str, Any]:
        """The kept references, JSON-friendly: per entry its step and base64 float64 Grams."""
        entries = {}
        for which in ("init", "prev", "last"):
            ref = self._refs.get(which)
            if ref is not None:
                entries[which] = {
                    "step": ref[0],
                    "grams": {k: _encode(g) for k, g in ref[1].items()},
                }
        return {"n_points": self.n_points, "entries": entries}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (the subset size must match)."""
        n = int(state.get("n_points", -1))
        if n != self.n_points:
            raise SplinescopeError(
                f"state: saved with n_points = {n}, this probe has n_points = {self.n_points}"
            )
        refs: dict[str, Any] = {}
        for which, entry in dict(state.get("entries", {})).items():
            if which not in ("init", "prev", "last"):
                raise SplinescopeError(f"state: unknown reference {which!r}")
            grams = {k: _decode(v, n) for k, v in entry["grams"].items()}
            refs[which] = (int(entry["step"]), grams)
        self._refs.clear()
        self._refs.update(refs)
