"""Tiny data and models shared by the integration tests (CPU, seconds)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset


def blobs(n: int, in_features: int = 6, n_classes: int = 3, seed: int = 0):
    """``n`` points near ``n_classes`` random centres in [0, 1]^d, int64 labels."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(n_classes, in_features, generator=torch.Generator().manual_seed(99))
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = (centers[y] + 0.15 * torch.randn(n, in_features, generator=g)).clamp(0, 1)
    return x, y


def datasets(n_train: int = 96, n_test: int = 64) -> tuple[TensorDataset, TensorDataset]:
    return TensorDataset(*blobs(n_train, seed=1)), TensorDataset(*blobs(n_test, seed=2))


def mlp(in_features: int = 6, n_classes: int = 3, width: int = 16) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(in_features, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, n_classes),
    )


def parameters_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Bit-identical parameters (same names, same values)."""
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
