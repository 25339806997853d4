"""Measuring changes nothing: modes, RNG states and autograd are restored after a measurement."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


def rng_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Which global RNGs (``torch``, ``cuda``, ``numpy``, ``python``) differ between two
    :func:`snapshot_rng` states; numpy's key array and position are both compared."""
    out = []
    if not torch.equal(before["torch"], after["torch"]):
        out.append("torch")
    if before.keys() != after.keys() or (
        "cuda" in before and not all(map(torch.equal, before["cuda"], after["cuda"]))
    ):
        out.append("cuda")
    (_, ka, *ra), (_, kb, *rb) = before["numpy"], after["numpy"]
    if not np.array_equal(ka, kb) or ra != rb:
        out.append("numpy")
    if before["python"] != after["python"]:
        out.append("python")
    return out


def _hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", ()))
        for m in model.modules()
    )


def _equal(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


@dataclass
class ModelState:
    """Everything measuring must leave as it was: the global RNG states (torch CPU and CUDA,
    numpy, python), the grad mode, every module's train/eval mode, every parameter's
    ``requires_grad`` and ``.grad``, the buffers, the number of hooks, and (``values=True``)
    the parameters' values.

    The one "measuring changes nothing" guard: :func:`measuring` restores what a measure
    may touch, the Monitor captures and restores it around every probe, and
    :func:`splinescope.monitor.check_probe` compares two captures with :meth:`changes`.
    """

    rng: dict[str, Any]
    grad_enabled: bool
    modes: list[tuple[nn.Module, bool]]
    requires_grad: list[tuple[str, nn.Parameter, bool]]
    grads: list[tuple[str, nn.Parameter, torch.Tensor | None, torch.Tensor | None]]
    buffers: list[tuple[str, torch.Tensor, torch.Tensor]]
    params: list[tuple[str, nn.Parameter, torch.Tensor]] | None
    hooks: int

    @classmethod
    def capture(cls, model: nn.Module, *, values: bool = False) -> ModelState:
        """The state of ``model`` and of the global RNGs now (copies, not references)."""
        named = list(model.named_parameters())
        return cls(
            rng=snapshot_rng(),
            grad_enabled=torch.is_grad_enabled(),
            modes=[(m, m.training) for m in model.modules()],
            requires_grad=[(n, p, p.requires_grad) for n, p in named],
            grads=[
                (n, p, p.grad, None if p.grad is None else p.grad.detach().clone())
                for n, p in named
            ],
            buffers=[(n, b, b.detach().clone()) for n, b in model.named_buffers()],
            params=[(n, p, p.detach().clone()) for n, p in named] if values else None,
            hooks=_hook_count(model),
        )

    def restore(self) -> None:
        """Put back everything captured (hooks excepted: a leaked hook is an error, see
        :meth:`changes`)."""
        restore_rng(self.rng)
        torch.set_grad_enabled(self.grad_enabled)
        for module, mode in self.modes:
            module.training = mode
        with torch.no_grad():
            for _, param, flag in self.requires_grad:
                param.requires_grad_(flag)
            for _, param, grad, value in self.grads:
                if grad is not None:
                    grad.copy_(value)
                param.grad = grad
            for _, buffer, value in self.buffers:
                buffer.copy_(value)
            for _, param, value in self.params or ():
                param.copy_(value)

    def changes(self, now: ModelState) -> list[str]:
        """What differs in ``now`` (a later capture of the same model), in words."""
        out = []
        rngs = rng_changes(self.rng, now.rng)
        if rngs:
            out.append(f"global RNG state ({', '.join(rngs)})")
        if self.grad_enabled != now.grad_enabled:
            out.append("grad mode")
        if [m for _, m in self.modes] != [m for _, m in now.modes]:
            out.append("train/eval modes")
        out += [
            f"requires_grad of {n}"
            for (n, _, a), (_, _, b) in zip(self.requires_grad, now.requires_grad, strict=True)
            if a != b
        ]
        out += [
            f".grad of {n}"
            for (n, _, _, a), (_, _, _, b) in zip(self.grads, now.grads, strict=True)
            if not _equal(a, b)
        ]
        out += [
            f"buffer {n}"
            for (n, _, a), (_, _, b) in zip(self.buffers, now.buffers, strict=True)
            if not _equal(a, b)
        ]
        if self.params is not None and now.params is not None:
            out += [
                f"parameter {n}"
                for (n, _, a), (_, _, b) in zip(self.params, now.params, strict=True)
                if not _equal(a, b)
            ]
        if self.hooks != now.hooks:
            out.append(f"hooks ({self.hooks} before, {now.hooks} after)")
        return out


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
    never updated); a warning says so once per process. Every module's ``training`` flag, the
    grad mode and the global RNG states (:class:`ModelState`) are restored on exit, even on
    error.
    """
    global _warned_batchnorm_train
    if not _warned_batchnorm_train and any(
        isinstance(m, _BatchNorm) and m.training for m in model.modules()
    ):
        _warned_batchnorm_train = True
        warnings.warn(
            "splinescope measures BatchNorm layers in eval mode (running statistics); "
            "the model's train/eval modes are restored afterwards",
            stacklevel=3,
        )
    rng = snapshot_rng()
    grad_enabled = torch.is_grad_enabled()
    modes = [(module, module.training) for module in model.modules()]
    try:
        with torch.no_grad():
            model.eval()
            yield
    finally:
        restore_rng(rng)
        torch.set_grad_enabled(grad_enabled)
        for module, training in modes:
            module.training = training
