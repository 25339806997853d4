"""Which modules and functions define the input-space partition, and how.

Kinds of partition units:

- ``"hinge"``: piecewise-linear activation with one breakpoint at 0 (ReLU, LeakyReLU, PReLU,
  RReLU in eval). The unit's state is ``sign(pre-activation)``.
- ``"two_hinge"``: two breakpoints (Hardtanh at ``min_val``/``max_val``, ReLU6 at 0 and 6);
  each neuron contributes two units, ``sign(a - min_val)`` and ``sign(a - max_val)``.
- ``"smooth"``: smooth activation with no hinge (GELU, SiLU, Softplus, ELU, ...); the sign of
  the pre-activation is used, as the published local-complexity code does. Flagged in results.
- ``"argmax"``: max-pooling; each output element is a unit whose state is the argmax index.
- ``"output"``: the output of a module the user named explicitly, state ``sign(output)``
  (how the published setup counts: it hooks every ``nn.Linear`` output, logits included).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

HINGE_MODULES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU)
TWO_HINGE_MODULES: tuple[type[nn.Module], ...] = (nn.Hardtanh,)  # ReLU6 subclasses Hardtanh
SMOOTH_MODULES: tuple[type[nn.Module], ...] = (
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Mish,
    nn.ELU,
    nn.CELU,
    nn.SELU,
)
MAXPOOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
#: Activations that are seen but do not define a partition; reported as skipped with this reason.
NON_PARTITION_MODULES: dict[type[nn.Module], str] = {
    nn.Tanh: "smooth saturating activation without a hinge",
    nn.Sigmoid: "smooth saturating activation without a hinge",
    nn.Softmax: "normalisation, not a partition-defining unit",
    nn.LogSoftmax: "normalisation, not a partition-defining unit",
}

#: Piecewise-linear or saturating modules that would cut the input space but are not read as
#: partition units; reported as skipped with this reason, never ignored.
UNSUPPORTED_MODULES: dict[type[nn.Module], str] = {
    nn.Threshold: "piecewise-linear activation not supported as a partition unit",
    nn.Hardshrink: "piecewise-linear activation not supported as a partition unit",
    nn.Softshrink: "piecewise-linear activation not supported as a partition unit",
    nn.Hardsigmoid: "piecewise-linear activation not supported as a partition unit",
    nn.Hardswish: "piecewise activation not supported as a partition unit",
    nn.LogSigmoid: "smooth saturating activation without a hinge",
    nn.Softsign: "smooth saturating activation without a hinge",
    nn.Tanhshrink: "smooth activation not supported as a partition unit",
}
_SATURATING = "smooth saturating function without a hinge"
_NORMALISATION = "normalisation, not a partition-defining unit"
_PIECEWISE = "piecewise-linear function not supported as a partition unit"
#: Functions and tensor methods (as recorded by ``torch.fx``) that are seen but not read as
#: partition units; reported as skipped with this reason.
NON_PARTITION_FUNCTIONS: dict[object, str] = {
    torch.tanh: _SATURATING,
    F.tanh: _SATURATING,
    torch.sigmoid: _SATURATING,
    F.sigmoid: _SATURATING,
    torch.softmax: _NORMALISATION,
    F.softmax: _NORMALISATION,
    torch.log_softmax: _NORMALISATION,
    F.log_softmax: _NORMALISATION,
    torch.clamp: _PIECEWISE,
    torch.clip: _PIECEWISE,
    torch.abs: _PIECEWISE,
    torch.maximum: _PIECEWISE,
    torch.minimum: _PIECEWISE,
    F.threshold: _PIECEWISE,
    F.hardsigmoid: _PIECEWISE,
    F.hardswish: _PIECEWISE,
}
NON_PARTITION_METHODS: dict[str, str] = {
    "tanh": _SATURATING,
    "sigmoid": _SATURATING,
    "softmax": _NORMALISATION,
    "log_softmax": _NORMALISATION,
    "clamp": _PIECEWISE,
    "clip": _PIECEWISE,
    "clamp_min": _PIECEWISE,
    "clamp_max": _PIECEWISE,
    "abs": _PIECEWISE,
    "maximum": _PIECEWISE,
    "minimum": _PIECEWISE,
}

HINGE_FUNCTIONS = {F.relu, torch.relu, F.relu_, torch.relu_, F.leaky_relu, F.prelu, torch.prelu}
TWO_HINGE_FUNCTIONS = {F.hardtanh, F.relu6}
SMOOTH_FUNCTIONS = {F.gelu, F.silu, F.softplus, F.mish, F.elu, F.celu, F.selu}
HINGE_METHODS = {"relu", "relu_"}

#: Functional max-pools (as recorded by ``torch.fx``) mapped to their index-returning twins.
MAXPOOL_FUNCTIONS = {
    F.max_pool1d: F.max_pool1d_with_indices,
    F.max_pool2d: F.max_pool2d_with_indices,
    F.max_pool3d: F.max_pool3d_with_indices,
    torch.max_pool1d: F.max_pool1d_with_indices,
    torch.max_pool2d: F.max_pool2d_with_indices,
    torch.max_pool3d: F.max_pool3d_with_indices,
    F.adaptive_max_pool1d: F.adaptive_max_pool1d_with_indices,
    F.adaptive_max_pool2d: F.adaptive_max_pool2d_with_indices,
    F.adaptive_max_pool3d: F.adaptive_max_pool3d_with_indices,
}

_MAXPOOL_MODULE_FUNCTION = {
    nn.MaxPool1d: F.max_pool1d_with_indices,
    nn.MaxPool2d: F.max_pool2d_with_indices,
    nn.MaxPool3d: F.max_pool3d_with_indices,
    nn.AdaptiveMaxPool1d: F.adaptive_max_pool1d_with_indices,
    nn.AdaptiveMaxPool2d: F.adaptive_max_pool2d_with_indices,
    nn.AdaptiveMaxPool3d: F.adaptive_max_pool3d_with_indices,
}


def module_kind(module: nn.Module) -> str | None:
    """The partition kind of an activation/pool module, or ``None`` if it defines no units."""
    if isinstance(module, TWO_HINGE_MODULES):
        return "two_hinge"
    if isinstance(module, HINGE_MODULES):
        return "hinge"
    if isinstance(module, SMOOTH_MODULES):
        return "smooth"
    if isinstance(module, MAXPOOL_MODULES):
        return "argmax"
    return None


def non_partition_reason(module: nn.Module) -> str | None:
    """Why a module that could shape the partition is not read as units (``None``: no reason)."""
    for table in (NON_PARTITION_MODULES, UNSUPPORTED_MODULES):
        for cls, reason in table.items():
            if isinstance(module, cls):
                return reason
    return None


def function_non_partition_reason(target: object) -> str | None:
    """Why a recorded function call is not read as units (``None``: no reason to report)."""
    try:
        return NON_PARTITION_FUNCTIONS.get(target)
    except TypeError:  # unhashable targets are never in the table
        return None


def module_thresholds(module: nn.Module) -> tuple[float, ...]:
    """Breakpoints of a module's activation, in pre-activation units."""
    if isinstance(module, nn.Hardtanh):
        return (float(module.min_val), float(module.max_val))
    return (0.0,)


def function_kind(target: object) -> str | None:
    """The partition kind of a function recorded by ``torch.fx`` (``call_function``)."""
    if target in TWO_HINGE_FUNCTIONS:
        return "two_hinge"
    if target in HINGE_FUNCTIONS:
        return "hinge"
    if target in SMOOTH_FUNCTIONS:
        return "smooth"
    if target in MAXPOOL_FUNCTIONS:
        return "argmax"
    return None


def function_thresholds(target: object, kwargs: dict) -> tuple[float, ...]:
    """Breakpoints of a functional activation given the call's keyword arguments."""
    if target is F.relu6:
        return (0.0, 6.0)
    if target is F.hardtanh:
        return (float(kwargs.get("min_val", -1.0)), float(kwargs.get("max_val", 1.0)))
    return (0.0,)


def pool_with_indices(
    module: nn.Module,
) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(input) -> (output, indices)`` for a max-pool module, with the module's own settings."""
    fn = next(f for cls, f in _MAXPOOL_MODULE_FUNCTION.items() if isinstance(module, cls))
    if isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
        return lambda x: fn(x, module.output_size, return_indices=True)
    return lambda x: fn(
        x,
        module.kernel_size,
        module.stride,
        module.padding,
        module.dilation,
        ceil_mode=module.ceil_mode,
        return_indices=True,
    )


def function_pool_with_indices(
    target: object, args: tuple, kwargs: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a functional max-pool call recorded by ``torch.fx`` so that it also returns indices."""
    kwargs = {**kwargs, "return_indices": True}
    return MAXPOOL_FUNCTIONS[target](*args, **kwargs)
