"""Small networks shared by the geometry tests."""

from __future__ import annotations

import torch
from torch import nn


def mlp(
    d_in: int = 20, width: int = 32, depth: int = 3, n_out: int = 5, act=nn.ReLU
) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), act()]
        d = width
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


class ConvBNPool(nn.Module):
    """conv-BN-ReLU ×2 with max-pool, then a linear head; BN stats made non-trivial."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.act2 = nn.ReLU()
        self.head = nn.Linear(8 * 4 * 4, 4)
        with torch.no_grad():
            for bn in (self.bn1, self.bn2):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.act1(self.bn1(self.conv1(x))))
        h = self.act2(self.bn2(self.conv2(h)))
        return self.head(h.flatten(1))


class ResidualMLP(nn.Module):
    """x -> Linear -> [h + Linear(ReLU(h))] ×2 -> head; pre-activations are sums."""

    def __init__(self, d_in: int = 12, width: int = 16) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(2))
        self.acts = nn.ModuleList(nn.ReLU() for _ in range(3))
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block, act in zip(self.blocks, self.acts[:2]):
            h = h + block(act(h))
        return self.head(self.acts[2](h))
