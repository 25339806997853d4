"""What the exact engine knows about each module and function: the op tables.

Which modules and functions are affine, linear, hinge activations, max-pools or smooth (no
exact partition), in one place, read by :mod:`._engine`.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from splinescope.nn import catalog

AFFINE_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, _BatchNorm)
LINEAR_MODULES = (
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
)
ACTIVATION_MODULES = catalog.HINGE_MODULES + catalog.TWO_HINGE_MODULES  # ReLU6 ⊂ Hardtanh
# Exact propagation handles 1-D/2-D max-pools without ceil_mode (3-D ones are refused).
MAXPOOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
# Smooth activations have no exact partition: refused with a reason.
SMOOTH_MODULES = (
    catalog.SMOOTH_MODULES + tuple(catalog.NON_PARTITION_MODULES) + (nn.Hardswish, nn.Hardsigmoid)
)
ACTIVATION_FUNCTIONS = {
    F.relu: "relu",
    torch.relu: "relu",
    F.relu_: "relu",
    torch.relu_: "relu",
    F.leaky_relu: "leaky_relu",
    F.prelu: "prelu",
    torch.prelu: "prelu",
    F.hardtanh: "hardtanh",
    F.relu6: "relu6",
}
MAXPOOL_FUNCTIONS = {
    F.max_pool1d,
    F.max_pool2d,
    torch.max_pool1d,
    torch.max_pool2d,
    F.adaptive_max_pool1d,
    F.adaptive_max_pool2d,
}
LINEAR_FUNCTIONS = {
    torch.flatten,
    torch.reshape,
    torch.squeeze,
    torch.unsqueeze,
    torch.permute,
    torch.transpose,
    F.avg_pool1d,
    F.avg_pool2d,
    F.avg_pool3d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    F.adaptive_avg_pool3d,
    operator.neg,
    torch.neg,
}
LINEAR_METHODS = {
    "view",
    "reshape",
    "flatten",
    "squeeze",
    "unsqueeze",
    "permute",
    "transpose",
    "contiguous",
    "clone",
    "neg",
}
SMOOTH_FUNCTIONS = {
    F.gelu,
    F.silu,
    F.softplus,
    F.mish,
    F.elu,
    F.celu,
    F.selu,
    torch.tanh,
    torch.sigmoid,
    F.softmax,
    F.log_softmax,
}


def describe_module(module: nn.Module) -> str:
    return f"nn.{type(module).__name__}"
