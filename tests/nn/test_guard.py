"""The measuring guard restores modes and RNG states and warns once about BatchNorm."""

import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import splinescope.nn.guard as guard
from splinescope.nn import measuring, record_states


def test_batchnorm_in_train_mode_warns_once(monkeypatch):
    monkeypatch.setattr(guard, "_warned_batchnorm_train", False)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU()).train()
    with pytest.warns(UserWarning, match="eval mode"):
        record_states(model, torch.randn(5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record_states(model, torch.randn(5, 3))
    assert all(m.training for m in model.modules())


def test_rng_and_modes_restored_even_on_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    torch_state, np_state, py_state = (
        torch.get_rng_state(),
        np.random.get_state()[1].copy(),
        random.getstate(),
    )
    with pytest.raises(RuntimeError, match="inside"):
        with measuring(model):
            assert not model.training
            torch.rand(3), np.random.rand(), random.random()
            raise RuntimeError("inside")
    assert model.training and model[1].training
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state, np.random.get_state()[1]) and py_state == random.getstate()
