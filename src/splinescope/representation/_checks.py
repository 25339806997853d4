"""Input checks shared by the representation measures; every error names the argument."""

from __future__ import annotations

from typing import Any

import torch

from splinescope.errors import SplinescopeError

CONV_MODES = ("flatten", "mean")


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else an error naming ``name``."""
    if value not in allowed:
        raise SplinescopeError(f"{name}: expected one of {list(allowed)}, got {value!r}")
    return value


def as_tensor(name: str, x: Any) -> torch.Tensor:
    """``x`` as a floating tensor (numpy arrays and lists are accepted), finite, non-empty."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with the argument's name
            raise SplinescopeError(
                f"{name}: expected a tensor or array, got {type(x).__name__}"
            ) from exc
    if x.is_complex():
        raise SplinescopeError(f"{name}: complex values are not supported (dtype {x.dtype})")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if x.numel() == 0:
        raise SplinescopeError(f"{name}: empty tensor of shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise SplinescopeError(f"{name}: {bad} non-finite value(s) (NaN or inf)")
    return x.detach()


def features(name: str, x: Any, conv: str = "flatten") -> torch.Tensor:
    """Features ``[n, d]`` from ``[n, d]`` or ``[n, c, *spatial]`` (flattened or position-mean)."""
    choice("conv", conv, CONV_MODES)
    x = as_tensor(name, x)
    if x.ndim < 2:
        raise SplinescopeError(
            f"{name}: expected features of shape [n, d] or [n, c, h, w], got shape {tuple(x.shape)}"
        )
    if x.ndim > 2:
        x = x.flatten(1) if conv == "flatten" else x.flatten(2).mean(dim=2)
    return x


def same_n(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> int:
    """The shared number of rows of ``a`` and ``b``; an error naming both if they differ."""
    if a.shape[0] != b.shape[0]:
        raise SplinescopeError(
            f"{a_name} has {a.shape[0]} rows but {b_name} has {b.shape[0]}: the same n points "
            "must be given to both"
        )
    return int(a.shape[0])


def min_n(n: int, least: int, what: str) -> None:
    """An error if fewer than ``least`` points were given for ``what``."""
    if n < least:
        raise SplinescopeError(f"n: {what} needs at least {least} points, got n = {n}")


def labels_1d(name: str, labels: Any, n: int, device: torch.device) -> torch.Tensor:
    """Integer class labels ``[n]`` on ``device``."""
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise SplinescopeError(
            f"{name}: expected shape [{n}] (one label per point), got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise SplinescopeError(f"{name}: expected integer class labels, got dtype {labels.dtype}")
    if n and int(labels.min()) < 0:
        raise SplinescopeError(f"{name}: class labels must be >= 0, got {int(labels.min())}")
    return labels.to(device=device, dtype=torch.long)
