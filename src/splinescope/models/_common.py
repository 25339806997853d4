"""Argument checks and the activation table shared by the reference models."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from splinescope.errors import SplinescopeError

#: Activation names accepted by the models, each a factory of a fresh module.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "relu6": nn.ReLU6,
    "hardtanh": nn.Hardtanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def activation_factory(
    activation: str | Callable[[], nn.Module], model: str
) -> Callable[[], nn.Module]:
    """A zero-argument factory of activation modules, from a name or a module class/factory."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise SplinescopeError(
                f"{model}: unknown activation {activation!r}; available: {', '.join(ACTIVATIONS)} "
                f"(or pass an nn.Module class)"
            )
        return ACTIVATIONS[activation]
    if callable(activation):

        def make() -> nn.Module:
            module = activation()
            if not isinstance(module, nn.Module):
                raise SplinescopeError(
                    f"{model}: activation must build an nn.Module, got {type(module).__name__}"
                )
            return module

        return make
    raise SplinescopeError(
        f"{model}: activation must be a name or an nn.Module class, got {activation!r}"
    )


def check_int(value: Any, name: str, model: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SplinescopeError(f"{model}: {name} must be an int >= {minimum}, got {value!r}")
    return value


def check_positive_float(value: Any, name: str, model: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise SplinescopeError(f"{model}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_int_tuple(value: Any, name: str, model: str) -> tuple[int, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) == 0:
        raise SplinescopeError(
            f"{model}: {name} must be a non-empty sequence of ints, got {value!r}"
        )
    for item in value:
        check_int(item, f"each entry of {name}", model, 1)
    return tuple(value)
