"""Leave the model and the process exactly as found while an attack runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def measuring(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode with gradients enabled (even inside ``no_grad`` or
    ``inference_mode``); on exit restore every module's ``training`` flag and the global CPU
    (and, if initialised, CUDA) RNG state.

    Attacks differentiate only with respect to their input (``torch.autograd.grad``), so
    parameters' ``.grad`` and ``requires_grad`` are never touched, and in eval mode BatchNorm
    buffers do not move.
    """
    modes = [(module, module.training) for module in model.modules()]
    cpu_state = torch.get_rng_state()
    cuda_states = (
        torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else None
    )
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training
        torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
