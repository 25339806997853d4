"""Fully connected network with an Omnigrok-style initialisation scale."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from splinescope.models._common import (
    activation_factory,
    check_int,
    check_positive_float,
)


class MLP(nn.Sequential):
    """``flatten -> (fc{i} -> act{i}) for i in 1..depth -> out``; input [N, *] flattened to
    [N, in_features], output logits [N, n_classes].

    ``init_scale`` multiplies every parameter (weights and biases) after PyTorch's default
    initialisation, as Omnigrok does (Liu et al., 2023); ``depth=0`` is a linear classifier.
    Module names are stable: ``fc1``, ``act1``, ..., ``out``.

    >>> MLP(64, 10, width=200, depth=2)(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        width: int = 200,
        depth: int = 2,
        activation: str | Callable[[], nn.Module] = "relu",
        init_scale: float = 1.0,
        bias: bool = True,
    ) -> None:
        name = "MLP"
        check_int(in_features, "in_features", name, 1)
        check_int(n_classes, "n_classes", name, 1)
        check_int(width, "width", name, 1)
        check_int(depth, "depth", name, 0)
        init_scale = check_positive_float(init_scale, "init_scale", name)
        make_activation = activation_factory(activation, name)
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        fan_in = in_features
        for i in range(1, depth + 1):
            layers[f"fc{i}"] = nn.Linear(fan_in, width, bias=bias)
            layers[f"act{i}"] = make_activation()
            fan_in = width
        layers["out"] = nn.Linear(fan_in, n_classes, bias=bias)
        super().__init__(layers)
        self.in_features = in_features
        self.n_classes = n_classes
        self.init_scale = init_scale
        if init_scale != 1.0:
            with torch.no_grad():
                for parameter in self.parameters():
                    parameter.mul_(init_scale)
