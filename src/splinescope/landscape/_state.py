"""Measuring curvature changes nothing: module modes are set per product and put back.

The global RNG guard is shared with the rest of splinescope (:mod:`splinescope.nn.guard`);
this module adds the per-module mode switch used around every Hessian-vector product.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from splinescope.nn.guard import preserved_rng

__all__ = ["measurement_modes", "preserved_rng"]


@contextmanager
def measurement_modes(model: nn.Module, *, bn_train: bool) -> Iterator[None]:
    """Every module in eval mode (BatchNorm in train mode only if ``bn_train``), then restored.

    Each module's own ``training`` flag is recorded and put back, so a model whose modules
    were in mixed modes comes back exactly as it was, even on error.
    """
    modes = [(module, module.training) for module in model.modules()]
    try:
        for module in model.modules():
            module.training = bn_train and isinstance(module, _BatchNorm)
        yield
    finally:
        for module, training in modes:
            module.training = training
