"""A user's tensors, .npz files and torch Datasets as SplitData."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from splinescope.data import from_npz, from_tensors, from_torch_dataset
from splinescope.errors import SplinescopeError


def _arrays(seed: int = 0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.uniform(-2, 3, size=(30, 1, 4, 4)),
        "y_train": rng.integers(0, 4, size=30),
        "x_test": rng.uniform(-2, 3, size=(12, 1, 4, 4)),
        "y_test": rng.integers(0, 4, size=12),
    }


def test_from_tensors_converts_copies_and_infers():
    arrays = _arrays()
    arrays["y_train"][0] = 5
    data = from_tensors(**arrays)
    assert data.x_train.dtype == torch.float32 and data.y_test.dtype == torch.int64
    assert data.n_classes == 6 and data.input_shape == (1, 4, 4)
    assert data.domain == (
        float(min(data.x_train.min(), data.x_test.min())),
        float(max(data.x_train.max(), data.x_test.max())),
    )
    x = torch.ones(4, 2)
    data = from_tensors(x, torch.tensor([0, 1, 0, 1]), torch.zeros(2, 2), torch.tensor([1.0, 0.0]))
    x[0, 0] = 7.0
    assert data.x_train[0, 0] == 1.0  # a copy, not a view of the caller's tensor
    assert data.y_test.tolist() == [1, 0]
    assert from_tensors(**_arrays(), n_classes=10).n_classes == 10


@pytest.mark.parametrize(
    "change,message",
    [
        ({"y_train": np.zeros(29, dtype=int)}, "x_train has 30 rows but y_train has 29 labels"),
        ({"y_test": np.full(12, 0.5)}, "y_test must hold integer class labels"),
        ({"y_train": -np.ones(30, dtype=int)}, "y_train holds negative labels"),
        ({"x_test": np.zeros((12, 2, 4, 4))}, "x_train and x_test have different input shapes"),
        ({"x_train": np.full((30, 1, 4, 4), np.nan)}, "x_train holds NaN or infinite values"),
        ({"x_train": np.zeros(30)}, "x_train must have shape [N, *input_shape]"),
        ({"y_train": np.zeros((30, 1), dtype=int)}, "y_train must have shape [N]"),
        ({"x_test": np.zeros((0, 1, 4, 4)), "y_test": np.zeros(0, dtype=int)}, "x_test is empty"),
        ({"x_train": np.array(["a"] * 30, dtype=object)}, "x_train cannot be converted"),
    ],
)
def test_from_tensors_errors_name_the_argument(change, message):
    with pytest.raises(SplinescopeError) as info:
        from_tensors(**{**_arrays(), **change})
    assert message in str(info.value)


def test_from_tensors_n_classes_must_cover_labels():
    with pytest.raises(SplinescopeError, match="n_classes=2 but the labels go up to 3"):
        from_tensors(**_arrays(), n_classes=2)


def test_from_npz_round_trip_and_missing_key(tmp_path):
    arrays = _arrays(1)
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays)
    data = from_npz(path, n_train=10, seed=3)
    assert data.name == "mine" and data.n_train == 10 and data.n_test == 12
    index = data.info["train_subset_indices"]
    assert torch.equal(data.x_train, torch.from_numpy(arrays["x_train"][index.numpy()]).float())
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=arrays["x_train"], y_train=arrays["y_train"], x_test=arrays["x_test"])
    with pytest.raises(SplinescopeError, match="lacks key\\(s\\) 'y_test'"):
        from_npz(bad)
    with pytest.raises(SplinescopeError, match="does not exist"):
        from_npz(tmp_path / "nowhere.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(SplinescopeError, match="cannot be read"):
        from_npz(junk)


class _Pairs(Dataset):
    """Items as (numpy array, python int), like a user's hand-written Dataset."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def test_from_torch_dataset_reads_items_in_order():
    arrays = _arrays(2)
    data = from_torch_dataset(
        _Pairs(arrays["x_train"], arrays["y_train"]),
        TensorDataset(torch.from_numpy(arrays["x_test"]), torch.from_numpy(arrays["y_test"])),
        batch_size=7,
    )
    reference = from_tensors(**arrays)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(data, field), getattr(reference, field))
    assert data.name == "_Pairs"


def test_from_torch_dataset_rejects_unlabelled_items():
    only_x = TensorDataset(torch.zeros(4, 2))
    with pytest.raises(SplinescopeError, match="train_ds must yield \\(input, label\\) pairs"):
        from_torch_dataset(only_x, only_x)
    empty = TensorDataset(torch.zeros(0, 2), torch.zeros(0))
    with pytest.raises(SplinescopeError, match="test_ds is empty"):
        from_torch_dataset(TensorDataset(torch.zeros(3, 2), torch.tensor([0, 1, 1])), empty)
