"""The Probe protocol: a thin object over a pure measure function.

A probe has a ``name`` (the store's probe column), ``needs`` (which parts of the
:class:`ProbeContext` it reads) and ``compute(model, ctx) -> ProbeResult``. It must leave the
model exactly as it found it: parameters, buffers, ``.grad``, train/eval modes, hooks and the
global RNG states. :func:`check_probe` verifies this for any probe, built-in or a user's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError

NEEDS = ("train", "test", "random", "loss_fn", "domain", "n_classes")
"""What a probe may need from the context."""

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ProbeResult:
    """What a probe measured at one step.

    Attributes:
        scalars: ``{key: value}`` — one number each (stored as metrics).
        arrays: ``{key: array}`` — per-point or per-layer vectors (stored as arrays).
    """

    scalars: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in self.scalars.items():
            if not isinstance(key, str):
                raise SplinescopeError(f"ProbeResult.scalars: keys must be strings, got {key!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise SplinescopeError(
                    f"ProbeResult.scalars[{key!r}]: expected a number, got {type(value).__name__}"
                )
        for key, value in self.arrays.items():
            if not isinstance(value, np.ndarray):
                raise SplinescopeError(
                    f"ProbeResult.arrays[{key!r}]: expected a numpy array, got "
                    f"{type(value).__name__}"
                )


@runtime_checkable
class Probe(Protocol):
    """Anything with a ``name``, ``needs``, ``outputs()`` (the keys it emits, see
    :class:`splinescope.monitor.registry.Outputs`) and ``compute(model, ctx) -> ProbeResult``.
    """

    name: str
    needs: tuple[str, ...]

    def outputs(self) -> Any: ...

    def compute(self, model: nn.Module, ctx: ProbeContext) -> ProbeResult: ...


@dataclass(frozen=True)
class ProbeContext:
    """The fixed point sets and settings probes measure on (the same at every step).

    Attributes:
        x_train, y_train: training inputs ``[N, *input_shape]`` and int64 labels ``[N]``.
        x_test, y_test: held-out inputs and labels.
        x_random: uniform random points in the training data's bounding box ``[M, *input_shape]``.
        domain: ``(lo, hi)`` of the input domain (attacks clamp to it).
        n_classes: number of classes.
        loss_fn: ``loss_fn(logits, labels) -> scalar`` — the training loss.
        step: the step being measured (set by the Monitor; -1 outside a measurement).
    """

    x_train: torch.Tensor | None = None
    y_train: torch.Tensor | None = None
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    x_random: torch.Tensor | None = None
    domain: tuple[float, float] | None = None
    n_classes: int | None = None
    loss_fn: LossFn | None = None
    step: int = -1

    def has(self, need: str) -> bool:
        """Whether the context provides ``need`` (one of :data:`NEEDS`)."""
        if need == "train":
            return self.x_train is not None and self.y_train is not None
        if need == "test":
            return self.x_test is not None and self.y_test is not None
        if need == "random":
            return self.x_random is not None
        if need in ("loss_fn", "domain", "n_classes"):
            return getattr(self, need) is not None
        raise SplinescopeError(f"needs: unknown need {need!r}; allowed: {', '.join(NEEDS)}")

    def missing(self, needs: tuple[str, ...]) -> list[str]:
        """The needs the context does not provide."""
        return [n for n in needs if not self.has(n)]

    def restricted(self, needs: tuple[str, ...]) -> ProbeContext:
        """A copy holding only what ``needs`` names (and the step): a probe given it can
        read nothing it did not declare."""
        for need in needs:
            self.has(need)  # unknown needs raise
        keep = {
            "train": ("x_train", "y_train"),
            "test": ("x_test", "y_test"),
            "random": ("x_random",),
            "loss_fn": ("loss_fn",),
            "domain": ("domain",),
            "n_classes": ("n_classes",),
        }
        kept = {attr for need in needs for attr in keep[need]}
        dropped = {attr: None for attrs in keep.values() for attr in attrs if attr not in kept}
        return replace(self, **dropped)

    @classmethod
    def from_data(
        cls,
        data: Any,
        *,
        loss_fn: LossFn | None = None,
        n_random: int = 1000,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> ProbeContext:
        """A context from a :class:`splinescope.data.SplitData`-like object.

        ``n_random`` uniform points are drawn in the per-feature bounding box of the training
        inputs with a private generator seeded by ``seed`` (the global RNG is untouched).
        """
        x_train = torch.as_tensor(data.x_train)
        x_random = random_points(x_train, n_random, seed=seed) if n_random > 0 else None

        def put(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            t = torch.as_tensor(t)
            return t.to(device) if device is not None else t

        domain = getattr(data, "domain", None)
        return cls(
            x_train=put(x_train),
            y_train=put(data.y_train),
            x_test=put(getattr(data, "x_test", None)),
            y_test=put(getattr(data, "y_test", None)),
            x_random=put(x_random),
            domain=None if domain is None else (float(domain[0]), float(domain[1])),
            n_classes=getattr(data, "n_classes", None),
            loss_fn=loss_fn,
        )


def random_points(x: torch.Tensor, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` points uniform in the per-feature bounding box ``[min x, max x]`` of ``x``.

    Args:
        x: ``[N, *shape]`` reference points.
        n: how many points to draw.
        seed: seed of a private generator (the global RNG is untouched).

    Returns:
        ``[n, *shape]`` in ``x``'s dtype.
    """
    if x.shape[0] == 0:
        raise SplinescopeError("x: cannot take the bounding box of an empty point set")
    lo = x.amin(dim=0)
    hi = x.amax(dim=0)
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand((n, *x.shape[1:]), generator=generator, dtype=torch.float64)
    return (lo.double().cpu() + u * (hi - lo).double().cpu()).to(x.dtype).to(x.device)


def subset(
    x: torch.Tensor, y: torch.Tensor | None, n: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The same ``n`` rows of ``x`` (and ``y``) at every call: a seeded permutation's head."""
    if n is None or n >= x.shape[0]:
        return x, y
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(x.shape[0], generator=generator)[:n].sort().values.to(x.device)
    return x[index], (None if y is None else y[index])


# ---------------------------------------------------------------------------- conformance


def _same_result(a: ProbeResult, b: ProbeResult) -> bool:
    if a.scalars.keys() != b.scalars.keys() or a.arrays.keys() != b.arrays.keys():
        return False
    same_scalars = all(
        a.scalars[k] == b.scalars[k] or (math.isnan(a.scalars[k]) and math.isnan(b.scalars[k]))
        for k in a.scalars
    )
    return same_scalars and all(
        a.arrays[k].shape == b.arrays[k].shape
        and np.array_equal(a.arrays[k], b.arrays[k], equal_nan=a.arrays[k].dtype.kind in "fc")
        for k in a.arrays
    )


def check_probe(probe: Any, model: nn.Module, ctx: ProbeContext) -> ProbeResult:
    """Run ``probe`` twice and verify it honours the protocol; return its result.

    Checks: a string ``name`` and a tuple ``needs`` of known needs that ``ctx`` provides;
    ``compute`` reads only what it declares it needs (it is given a context holding nothing
    else); it returns a :class:`ProbeResult` with finite scalars; the keys it emits are
    exactly the declared ones (every emitted key in a family of ``outputs()``, every family
    emitted); it is deterministic (a second call on the same inputs gives the same result);
    and measuring changes nothing (:class:`splinescope.nn.guard.ModelState`: parameters,
    buffers, ``.grad``, modes, ``requires_grad``, hooks, the torch/CUDA/numpy/python RNG
    states, the grad mode). The model is checked in train mode with non-empty ``.grad`` (as
    inside a training loop), then restored.

    Raises:
        SplinescopeError: naming the first broken promise.
    """
    from splinescope.monitor.outputs import Outputs
    from splinescope.nn.guard import ModelState

    name = getattr(probe, "name", None)
    if not isinstance(name, str) or not name:
        raise SplinescopeError(f"probe {probe!r}: needs a non-empty string attribute 'name'")
    needs = getattr(probe, "needs", None)
    if not isinstance(needs, tuple):
        raise SplinescopeError(f"probe {name!r}: 'needs' must be a tuple, got {needs!r}")
    missing = ctx.missing(needs)
    if missing:
        raise SplinescopeError(f"probe {name!r}: the context lacks {', '.join(missing)}")
    outputs = probe.outputs() if callable(getattr(probe, "outputs", None)) else None
    if not isinstance(outputs, Outputs):
        raise SplinescopeError(
            f"probe {name!r}: outputs() must return a splinescope.monitor.Outputs declaring "
            f"the keys it emits, got {type(outputs).__name__}"
        )
    restricted = ctx.restricted(needs)
    outer = ModelState.capture(model, values=True)
    model.train()
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.full_like(p, 0.5)
    try:
        results = []
        for _ in range(2):
            before = ModelState.capture(model, values=True)
            try:
                result = probe.compute(model, restricted)
            except Exception as exc:
                raise SplinescopeError(
                    f"probe {name!r}: compute raised {type(exc).__name__}: {exc} (it is given "
                    f"only what its needs {needs} name; the rest of the context is None)"
                ) from exc
            changed = before.changes(ModelState.capture(model, values=True))
            if changed:
                raise SplinescopeError(
                    f"probe {name!r}: compute changed the model's {', '.join(changed)}"
                )
            results.append(result)
    finally:
        outer.restore()
    result = results[0]
    if not isinstance(result, ProbeResult):
        raise SplinescopeError(
            f"probe {name!r}: compute must return a ProbeResult, got {type(result).__name__}"
        )
    for key, value in result.scalars.items():
        if not math.isfinite(float(value)):
            raise SplinescopeError(f"probe {name!r}: scalar {key!r} is not finite ({value})")
    undeclared = outputs.undeclared(result.scalars, result.arrays)
    if undeclared:
        raise SplinescopeError(f"probe {name!r}: emits undeclared key(s) {undeclared}")
    unmatched = outputs.unmatched(result.scalars, result.arrays)
    if unmatched:
        raise SplinescopeError(f"probe {name!r}: declares key(s) it did not emit: {unmatched}")
    if not _same_result(result, results[1]):
        raise SplinescopeError(
            f"probe {name!r}: not deterministic (two calls on the same model and points differ)"
        )
    return result
