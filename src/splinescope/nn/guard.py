"""Measuring changes nothing: modes, RNG states and autograd are restored after a measurement."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

_warned_batchnorm_train = False


def snapshot_rng() -> dict[str, Any]:
    """The global RNG states of torch (CPU and CUDA), numpy and python's ``random``."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the global RNG states taken by :func:`snapshot_rng`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore every global RNG state on exit, even on error."""
    state = snapshot_rng()
    try:
        yield
    finally:
        restore_rng(state)


@contextmanager
def measuring(model: nn.Module) -> Iterator[None]:
    """Run a measurement on ``model`` in eval mode without gradients, then restore everything.

    BatchNorm layers in train mode are measured in eval mode (running statistics, which are
    never updated); a warning says so once per process. Every module's ``training`` flag and
    the global RNG states are restored on exit, even on error.
    """
    global _warned_batchnorm_train
    modes = [(module, module.training) for module in model.modules()]
    if not _warned_batchnorm_train and any(
        isinstance(m, _BatchNorm) and m.training for m in model.modules()
    ):
        _warned_batchnorm_train = True
        warnings.warn(
            "splinescope measures BatchNorm layers in eval mode (running statistics); "
            "the model's train/eval modes are restored afterwards",
            stacklevel=3,
        )
    try:
        with preserved_rng(), torch.no_grad():
            model.eval()
            yield
    finally:
        for module, training in modes:
            module.training = training
