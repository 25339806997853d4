"""Tiny models and dense oracles for the curvature tests: the exact Hessian, GGN and Jacobian
of the dataset loss on the flattened parameters, built with ``torch.func`` in float64."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, hessian, jacrev


def tiny_mlp(seed: int = 0, width: int = 12, d_in: int = 6, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(d_in, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, classes),
    )


def tiny_cnn(seed: int = 0, bn: bool = True, classes: int = 3) -> nn.Module:
    """conv-BN-ReLU-maxpool twice, then a linear head; 6x6 inputs with 2 channels."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(2, 4, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.MaxPool2d(3), nn.Flatten(), nn.Linear(4, classes)]
    return nn.Sequential(*layers)


def classification_data(seed: int, n: int, shape: tuple[int, ...], classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def train_a_little(model: nn.Module, x, y, steps: int = 30, lr: float = 0.05) -> nn.Module:
    """A few full-batch SGD steps in train mode (BN running statistics move too)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model


def _flat(model: nn.Module):
    named = [(n, p.detach().double()) for n, p in model.named_parameters() if p.requires_grad]
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    flat = torch.cat([p.reshape(-1) for _, p in named])
    return names, shapes, sizes, flat


def _double_model(model: nn.Module) -> nn.Module:
    m = copy.deepcopy(model).double()
    m.eval()
    return m


def _outputs_fn(model: nn.Module, x):
    m = _double_model(model)
    names, shapes, sizes, flat = _flat(model)
    x = x.double()

    def outputs(theta):
        parts = torch.split(theta, sizes)
        params = {n: q.view(s) for n, q, s in zip(names, parts, shapes)}
        return functional_call(m, params, (x,))

    return outputs, flat


def exact_hessian(model: nn.Module, loss_fn, x, y) -> torch.Tensor:
    """Dense float64 Hessian of ``loss_fn(model(x), y)`` (model in eval mode) on all parameters."""
    outputs, flat = _outputs_fn(model, x)
    return hessian(lambda t: loss_fn(outputs(t), y))(flat)


def exact_jacobian(model: nn.Module, x) -> tuple[torch.Tensor, torch.Tensor]:
    """``(outputs (N, C), J (N, C, n))`` in float64."""
    outputs, flat = _outputs_fn(model, x)
    return outputs(flat), jacrev(outputs)(flat)


def dense(op) -> torch.Tensor:
    """The operator's matrix, column by column, in float64."""
    eye = torch.eye(op.n, dtype=torch.float64)
    return torch.stack([op.matvec(eye[i]) for i in range(op.n)], dim=1)


def probe(op, h: torch.Tensor, count: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(op @ V, h @ V)`` for ``count`` random columns ``V`` (cheaper than the dense matrix)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(op.n, count, generator=g, dtype=torch.float64)
    return torch.stack([op.matvec(v[:, i]) for i in range(count)], dim=1), h @ v
