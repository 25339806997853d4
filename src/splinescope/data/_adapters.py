"""A user's own data as a :class:`SplitData`: tensors or arrays, an ``.npz`` file, torch Datasets."""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from splinescope.data._split import SplitData, build_split
from splinescope.errors import SplinescopeError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def from_tensors(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    n_classes: int | None = None,
    *,
    name: str = "tensors",
    seed: int = 0,
    n_train: int | None = None,
    label_noise: float = 0.0,
) -> SplitData:
    """Wrap tensors or arrays: ``x_*`` [N, *input_shape] (made float32), ``y_*`` [N] integer
    labels (made int64). ``n_classes`` defaults to the largest label + 1. The data are copied;
    ``n_train``/``label_noise`` act as in :func:`load_dataset`.

    >>> data = from_tensors(torch.rand(8, 3), torch.arange(8) % 2, torch.rand(4, 3), torch.zeros(4))
    >>> data.n_classes, data.input_shape
    (2, (3,))
    """
    return build_split(
        x_train,
        y_train,
        x_test,
        y_test,
        name=name,
        n_classes=n_classes,
        seed=seed,
        n_train=n_train,
        label_noise=label_noise,
        info={"source": "from_tensors"},
    )


def from_npz(
    path: str | os.PathLike[str],
    n_classes: int | None = None,
    *,
    seed: int = 0,
    n_train: int | None = None,
    label_noise: float = 0.0,
) -> SplitData:
    """Read ``x_train``, ``y_train``, ``x_test``, ``y_test`` from a NumPy ``.npz`` file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SplinescopeError(f"npz file {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise SplinescopeError(
                    f"npz file {path!r} lacks key(s) {', '.join(map(repr, missing))}; it has "
                    f"{', '.join(map(repr, archive.files)) or 'no arrays'} and needs "
                    f"{', '.join(NPZ_KEYS)}"
                )
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, SplinescopeError):
            raise
        raise SplinescopeError(f"npz file {path!r} cannot be read: {exc}") from exc
    split = build_split(
        **arrays,
        name=os.path.splitext(os.path.basename(path))[0],
        n_classes=n_classes,
        seed=seed,
        n_train=n_train,
        label_noise=label_noise,
        info={"source": "from_npz", "path": path},
    )
    return split


def _collect(dataset: Dataset, which: str, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        length = len(dataset)  # type: ignore[arg-type]
    except TypeError as exc:
        raise SplinescopeError(f"{which} must be a map-style Dataset with a length") from exc
    if length == 0:
        raise SplinescopeError(f"{which} is empty")
    xs, ys = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        if not isinstance(batch, (list, tuple)) or len(batch) != 2:
            raise SplinescopeError(
                f"{which} must yield (input, label) pairs, got items of type {type(batch).__name__}"
                f" with {len(batch) if isinstance(batch, (list, tuple)) else 1} element(s)"
            )
        xs.append(torch.as_tensor(batch[0]))
        ys.append(torch.as_tensor(batch[1]))
    return torch.cat(xs), torch.cat(ys)


def from_torch_dataset(
    train_ds: Dataset,
    test_ds: Dataset,
    n_classes: int | None = None,
    *,
    seed: int = 0,
    n_train: int | None = None,
    label_noise: float = 0.0,
    batch_size: int = 1024,
) -> SplitData:
    """Materialise two map-style Datasets of ``(input, label)`` items into a :class:`SplitData`.

    Items are read in order with the default collate; transforms run once, here.
    """
    x_tr, y_tr = _collect(train_ds, "train_ds", batch_size)
    x_te, y_te = _collect(test_ds, "test_ds", batch_size)
    return build_split(
        x_tr,
        y_tr,
        x_te,
        y_te,
        name=type(train_ds).__name__,
        n_classes=n_classes,
        seed=seed,
        n_train=n_train,
        label_noise=label_noise,
        info={"source": "from_torch_dataset"},
    )
