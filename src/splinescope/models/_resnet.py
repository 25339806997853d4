"""A small pre-activation ResNet (He et al., 2016, "Identity Mappings in Deep Residual
Networks") with optional BatchNorm, written without torchvision."""

from __future__ import annotations

import torch
from torch import nn

from splinescope.models._common import check_int, check_int_tuple


class PreActBlock(nn.Module):
    """``[bn1] -> act1 -> conv1 (3x3, stride) -> [bn2] -> act2 -> conv2 (3x3)`` plus a shortcut:
    the identity, or a 1x1 strided ``shortcut`` conv applied to the pre-activated input when the
    shape changes. Each activation is its own module so hooks see each unit layer once."""

    def __init__(self, c_in: int, c_out: int, stride: int, batchnorm: bool) -> None:
        super().__init__()
        bias = not batchnorm
        self.bn1 = nn.BatchNorm2d(c_in) if batchnorm else None
        self.act1 = nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(c_out) if batchnorm else None
        self.act2 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias)
        needs_projection = stride != 1 or c_in != c_out
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=bias) if needs_projection else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(x) if self.bn1 is not None else x)
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.act2(self.bn2(out) if self.bn2 is not None else out)
        return self.conv2(out) + shortcut


class PreActResNet(nn.Module):
    """``stem (3x3 conv) -> stage1..stageK -> [bn] -> act -> global average pool -> fc``.

    Stage ``s`` (from 1) has ``blocks[s-1]`` :class:`PreActBlock` s of ``width * 2**(s-1)``
    channels; every stage after the first starts with a stride-2 block. Input
    [N, in_channels, H, W] of any H, W >= 1; output logits [N, n_classes].

    >>> PreActResNet(1, 10, width=8)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        width: int = 16,
        blocks: tuple[int, ...] = (1, 1),
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        name = "PreActResNet"
        check_int(in_channels, "in_channels", name, 1)
        check_int(n_classes, "n_classes", name, 1)
        check_int(width, "width", name, 1)
        blocks = check_int_tuple(blocks, "blocks", name)
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=not batchnorm)
        c_in = width
        for s, n_blocks in enumerate(blocks):
            c_out = width * 2**s
            stage = nn.Sequential()
            for b in range(n_blocks):
                stride = 2 if s > 0 and b == 0 else 1
                stage.add_module(f"block{b + 1}", PreActBlock(c_in, c_out, stride, batchnorm))
                c_in = c_out
            self.add_module(f"stage{s + 1}", stage)
        self.n_stages = len(blocks)
        self.bn = nn.BatchNorm2d(c_in) if batchnorm else None
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        for s in range(1, self.n_stages + 1):
            out = getattr(self, f"stage{s}")(out)
        out = self.act(self.bn(out) if self.bn is not None else out)
        return self.fc(self.flatten(self.pool(out)))
