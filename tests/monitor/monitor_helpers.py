"""Tiny models and point sets shared by the monitor tests (CPU, a few hundred points)."""

from __future__ import annotations

import torch
from torch import nn

from splinescope.monitor import ProbeContext, random_points
from splinescope.train import mse_onehot


def tiny_mlp(in_features: int = 6, n_classes: int = 3, width: int = 16, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(in_features, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, n_classes),
    )


def blobs(n: int, in_features: int = 6, n_classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_classes, (n,), generator=g)
    centers = torch.rand(n_classes, in_features, generator=g)
    x = (centers[y] + 0.15 * torch.randn(n, in_features, generator=g)).clamp(0, 1)
    return x, y


def tiny_context() -> ProbeContext:
    x_train, y_train = blobs(120, seed=1)
    x_test, y_test = blobs(80, seed=2)
    return ProbeContext(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        x_random=random_points(x_train, 50, seed=3),
        domain=(0.0, 1.0),
        n_classes=3,
        loss_fn=mse_onehot,
    )
