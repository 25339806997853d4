"""A small convolutional classifier for 1-D signals or 2-D images."""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.models._common import check_int, check_int_tuple

_LAYERS = {
    1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AvgPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d),
}
POOLS = ("max", "avg", "none")


def _input_size(input_size: object) -> tuple[int, ...]:
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        return (check_int(input_size, "input_size", "SmallCNN", 1),) * 2
    size = check_int_tuple(input_size, "input_size", "SmallCNN")
    if len(size) not in _LAYERS:
        raise SplinescopeError(
            f"SmallCNN: input_size must be an int (square image), (H, W) or (L,), got {input_size!r}"
        )
    return size


class SmallCNN(nn.Sequential):
    """``(conv{i} 3x3 pad 1 -> [bn{i}] -> act{i} -> [pool{i} 2x2]) per entry of channels ->
    flatten -> fc``.

    Input [N, in_channels, *input_size]; ``input_size`` an int (square image), ``(H, W)`` or
    ``(L,)`` for 1-D signals (Conv1d). ``pool`` is ``"max"``, ``"avg"`` or ``"none"``; each
    2x pooling floors the spatial size. Convolutions carry a bias only without BatchNorm.

    >>> import torch
    >>> SmallCNN(1, 10, 8)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        input_size: int | tuple[int, ...],
        channels: tuple[int, ...] = (32, 64),
        batchnorm: bool = False,
        pool: str = "max",
    ) -> None:
        name = "SmallCNN"
        check_int(in_channels, "in_channels", name, 1)
        check_int(n_classes, "n_classes", name, 1)
        size = _input_size(input_size)
        channels = check_int_tuple(channels, "channels", name)
        if pool not in POOLS:
            raise SplinescopeError(f"{name}: pool must be one of {', '.join(POOLS)}, got {pool!r}")
        conv, norm, max_pool, avg_pool = _LAYERS[len(size)]
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = in_channels
        for i, c_out in enumerate(channels, start=1):
            layers[f"conv{i}"] = conv(c_in, c_out, kernel_size=3, padding=1, bias=not batchnorm)
            if batchnorm:
                layers[f"bn{i}"] = norm(c_out)
            layers[f"act{i}"] = nn.ReLU()
            if pool != "none":
                layers[f"pool{i}"] = (max_pool if pool == "max" else avg_pool)(kernel_size=2)
                size = tuple(s // 2 for s in size)
                if min(size) == 0:
                    raise SplinescopeError(
                        f"{name}: input_size {input_size!r} is too small for {len(channels)} "
                        f"2x pooling stages (channels={channels})"
                    )
            c_in = c_out
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(c_in * math.prod(size), n_classes)
        super().__init__(layers)
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.input_size = _input_size(input_size)
