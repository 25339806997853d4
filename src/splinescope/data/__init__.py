"""Embedded data sets (no downloads) and adapters for a user's own data.

>>> from splinescope.data import load_dataset
>>> data = load_dataset("digits", seed=0, label_noise=0.1)
>>> data.x_train.shape, data.domain, len(data.info["noisy_indices"])
(torch.Size([1000, 64]), (0.0, 1.0), 100)
"""

from splinescope.data._adapters import from_npz, from_tensors, from_torch_dataset
from splinescope.data._datasets import DATASETS, load_dataset
from splinescope.data._split import SplitData

#: Names accepted by :func:`load_dataset`.
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)

__all__ = [
    "DATASET_NAMES",
    "SplitData",
    "from_npz",
    "from_tensors",
    "from_torch_dataset",
    "load_dataset",
]
