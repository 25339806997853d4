"""Build a reference model by name, optionally sizing it from a :class:`SplitData`."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from splinescope.data import SplitData
from splinescope.errors import SplinescopeError
from splinescope.models._cnn import SmallCNN
from splinescope.models._mlp import MLP
from splinescope.models._resnet import PreActResNet

#: Kind names accepted by :func:`build_model` (aliases point at the same class).
MODELS: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "cnn": SmallCNN,
    "small_cnn": SmallCNN,
    "resnet": PreActResNet,
    "preact_resnet": PreActResNet,
}


def _from_data(cls: type[nn.Module], data: SplitData) -> dict[str, Any]:
    """The size arguments a model class takes from a data set's input shape and classes."""
    shape = data.input_shape
    sized: dict[str, Any] = {"n_classes": data.n_classes}
    if cls is MLP:
        sized["in_features"] = data.n_features
        return sized
    if len(shape) not in ((2, 3) if cls is SmallCNN else (3,)):
        wanted = "[C, L] or [C, H, W]" if cls is SmallCNN else "[C, H, W]"
        raise SplinescopeError(
            f"{cls.__name__} needs inputs shaped {wanted}, but data {data.name!r} has input_shape "
            f"{shape}; load it unflattened (e.g. flatten=False)"
        )
    sized["in_channels"] = shape[0]
    if cls is SmallCNN:
        sized["input_size"] = tuple(shape[1:])
    return sized


def build_model(kind: str, *, data: SplitData | None = None, **kwargs: Any) -> nn.Module:
    """Build ``"mlp"``, ``"cnn"`` (``"small_cnn"``) or ``"resnet"`` (``"preact_resnet"``).

    ``kwargs`` are the class's constructor arguments; with ``data``, the input size and number
    of classes are taken from it (explicit kwargs win).

    >>> build_model("mlp", in_features=64, n_classes=10, width=32).out
    Linear(in_features=32, out_features=10, bias=True)
    """
    if not isinstance(kind, str) or kind.lower() not in MODELS:
        raise SplinescopeError(f"unknown model kind {kind!r}; available: {', '.join(MODELS)}")
    cls = MODELS[kind.lower()]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise SplinescopeError(
            f"unknown argument(s) {', '.join(map(repr, unknown))} for model {kind!r}; "
            f"allowed: {', '.join(allowed)}"
        )
    if data is not None:
        if not isinstance(data, SplitData):
            raise SplinescopeError(f"data must be a SplitData, got {type(data).__name__}")
        kwargs = {**_from_data(cls, data), **kwargs}
    missing = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.default is inspect.Parameter.empty and p.name not in kwargs
    ]
    if missing:
        raise SplinescopeError(
            f"model {kind!r} needs argument(s) {', '.join(map(repr, missing))} (or data=...)"
        )
    return cls(**kwargs)
