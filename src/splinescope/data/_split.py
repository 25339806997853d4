"""The split every loader returns, and the options shared by all of them (subset, label noise)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from splinescope.errors import SplinescopeError


@dataclass(frozen=True, eq=False)
class SplitData:
    """A train/test split with its data domain.

    ``x_train`` [N_train, *input_shape] float32, ``y_train`` [N_train] int64 (same for test).
    ``domain`` is ``(lo, hi)``: the smallest and largest input value over both full splits
    (before any train subset), the box that attacks clamp to and random points are drawn from. ``info`` records how the data
    were made (source, options, ``noisy_indices`` of the train labels that label noise changed,
    ``clean_y_train`` the labels before noise).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    domain: tuple[float, float]
    n_classes: int
    input_shape: tuple[int, ...]
    name: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def n_features(self) -> int:
        """Number of input values per example (``prod(input_shape)``)."""
        return math.prod(self.input_shape)

    def __repr__(self) -> str:
        return (
            f"SplitData(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
            f"input_shape={self.input_shape}, n_classes={self.n_classes}, domain={self.domain})"
        )


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SplinescopeError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise SplinescopeError(f"seed must be >= 0, got {seed}")
    return int(seed)


def _as_tensor(value: object, what: str, dtype: torch.dtype) -> torch.Tensor:
    # Always a copy: the split never aliases the caller's arrays or a loader's cache.
    if isinstance(value, torch.Tensor):
        tensor = value.detach().clone()
    else:
        try:
            tensor = torch.from_numpy(np.array(value))
        except (TypeError, ValueError) as exc:
            raise SplinescopeError(f"{what} cannot be converted to a tensor: {exc}") from exc
    if dtype == torch.int64:
        if tensor.is_floating_point() or tensor.is_complex():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise SplinescopeError(f"{what} holds NaN or infinite labels")
            if tensor.is_floating_point() and tensor.numel() and tensor.abs().max() > 2**31:
                raise SplinescopeError(
                    f"{what} holds labels beyond 2**31 (largest {float(tensor.abs().max()):g}); "
                    "class labels are 0 .. n_classes - 1"
                )
            if not torch.equal(tensor, tensor.round()):
                raise SplinescopeError(
                    f"{what} must hold integer class labels, got fractional values"
                )
        elif tensor.dtype == torch.bool:
            raise SplinescopeError(f"{what} must hold integer class labels, got booleans")
    elif not (tensor.is_floating_point() or tensor.dtype in _INTEGER_DTYPES):
        raise SplinescopeError(f"{what} must be numeric, got dtype {tensor.dtype}")
    return tensor.to(dtype).contiguous()


_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)


def build_split(
    x_train: object,
    y_train: object,
    x_test: object,
    y_test: object,
    *,
    name: str,
    n_classes: int | None = None,
    seed: int = 0,
    n_train: int | None = None,
    label_noise: float = 0.0,
    info: dict[str, Any] | None = None,
) -> SplitData:
    """Validate arrays, then apply the train-subset and label-noise options (in that order).

    The subset is the first ``n_train`` rows of a permutation drawn from ``seed``; label noise
    replaces ``round(label_noise * n_train)`` train labels, chosen from a second stream of the
    same seed, by a uniformly drawn *different* class. Test labels are never changed.
    """
    seed = check_seed(seed)
    xs = {
        "x_train": _as_tensor(x_train, "x_train", torch.float32),
        "x_test": _as_tensor(x_test, "x_test", torch.float32),
    }
    ys = {
        "y_train": _as_tensor(y_train, "y_train", torch.int64),
        "y_test": _as_tensor(y_test, "y_test", torch.int64),
    }
    for split in ("train", "test"):
        x, y = xs[f"x_{split}"], ys[f"y_{split}"]
        if x.ndim < 2:
            raise SplinescopeError(
                f"x_{split} must have shape [N, *input_shape] with at least 2 dims, "
                f"got shape {tuple(x.shape)}"
            )
        if y.ndim != 1:
            raise SplinescopeError(f"y_{split} must have shape [N], got shape {tuple(y.shape)}")
        if x.shape[0] != y.shape[0]:
            raise SplinescopeError(
                f"x_{split} has {x.shape[0]} rows but y_{split} has {y.shape[0]} labels"
            )
        if x.shape[0] == 0:
            raise SplinescopeError(f"x_{split} is empty")
        if not torch.isfinite(x).all():
            raise SplinescopeError(f"x_{split} holds NaN or infinite values")
        if (y < 0).any():
            raise SplinescopeError(f"y_{split} holds negative labels (min {int(y.min())})")
    if xs["x_train"].shape[1:] != xs["x_test"].shape[1:]:
        raise SplinescopeError(
            f"x_train and x_test have different input shapes: {tuple(xs['x_train'].shape[1:])} "
            f"vs {tuple(xs['x_test'].shape[1:])}"
        )
    max_label = int(max(ys["y_train"].max(), ys["y_test"].max()))
    if n_classes is None:
        n_classes = max_label + 1
    elif isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise SplinescopeError(f"n_classes must be an int, got {n_classes!r}")
    elif n_classes <= max_label:
        raise SplinescopeError(
            f"n_classes={n_classes} but the labels go up to {max_label}; "
            f"n_classes must exceed the largest label"
        )
    n_classes = int(n_classes)
    if n_classes < 2:
        raise SplinescopeError(f"n_classes must be >= 2, got {n_classes}")

    x_tr, y_tr, x_te = xs["x_train"], ys["y_train"], xs["x_test"]
    # The domain is the whole data set's, taken before any subset, so it does not move with n_train.
    lo = float(min(x_tr.min(), x_te.min()))
    hi = float(max(x_tr.max(), x_te.max()))
    if lo == hi:
        raise SplinescopeError(f"the {name} inputs are constant ({lo}); the data domain is empty")
    info = dict(info or {})
    available = x_tr.shape[0]
    if n_train is not None:
        if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)):
            raise SplinescopeError(f"n_train must be an int or None, got {n_train!r}")
        if not 1 <= n_train <= available:
            raise SplinescopeError(
                f"n_train must be between 1 and {available} (the size of the {name} "
                f"training split), got {n_train}"
            )
        order = np.random.default_rng([seed, 1]).permutation(available)[: int(n_train)]
        index = torch.from_numpy(np.sort(order))
        x_tr, y_tr = x_tr[index], y_tr[index]
        info["train_subset_indices"] = index

    if isinstance(label_noise, bool) or not isinstance(label_noise, (int, float, np.floating)):
        raise SplinescopeError(f"label_noise must be a float in [0, 1], got {label_noise!r}")
    if not 0.0 <= float(label_noise) <= 1.0:
        raise SplinescopeError(f"label_noise must be in [0, 1], got {label_noise}")
    n_noisy = round(float(label_noise) * y_tr.shape[0])
    info["label_noise"] = float(label_noise)
    info["clean_y_train"] = y_tr
    if n_noisy:
        rng = np.random.default_rng([seed, 2])
        noisy = np.sort(rng.choice(y_tr.shape[0], size=n_noisy, replace=False))
        shift = rng.integers(1, n_classes, size=n_noisy)  # 1..C-1: never the same class
        y_tr = y_tr.clone()
        noisy_t = torch.from_numpy(noisy)
        y_tr[noisy_t] = (y_tr[noisy_t] + torch.from_numpy(shift)) % n_classes
        info["noisy_indices"] = noisy_t
    else:
        info["noisy_indices"] = torch.zeros(0, dtype=torch.int64)

    return SplitData(
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=ys["y_test"],
        domain=(lo, hi),
        n_classes=n_classes,
        input_shape=tuple(int(s) for s in x_tr.shape[1:]),
        name=name,
        info=info,
    )
