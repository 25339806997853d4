"""unit_activity() against explicit pre-activations."""

import pytest
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.activity import unit_activity


def test_unit_activity_against_explicit_preactivations():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 3)
    )
    with torch.no_grad():
        model[0].bias[:3] = -100.0  # dead in layer 1
        model[0].bias[3:5] = 100.0  # always on in layer 1
        model[2].bias[:2] = 100.0  # always on in layer 2
    x = torch.rand(60, 6)
    with torch.no_grad():
        h1 = model[0](x)
        h2 = model[2](torch.relu(h1))
    dead = int((h1 <= 0).all(0).sum() + (h2 <= 0).all(0).sum())
    on = int((h1 > 0).all(0).sum() + (h2 > 0).all(0).sum())
    activity = unit_activity(model, x, batch_size=7)
    assert activity.n_units == 24 and activity.skipped == {}
    assert activity.dead_frac == dead / 24 and dead >= 3
    assert activity.always_on_frac == on / 24 and on >= 4
    layer1_dead, layer1_on = next(iter(activity.per_layer.values()))
    assert layer1_dead == int((h1 <= 0).all(0).sum()) / 12
    assert layer1_on == int((h1 > 0).all(0).sum()) / 12


def test_layers_without_an_on_off_state_are_listed_as_skipped():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 2))
    activity = unit_activity(model, torch.rand(10, 4))
    assert activity.n_units == 6 and len(activity.per_layer) == 1
    ((layer, reason),) = activity.skipped.items()
    assert "smooth" in reason


def test_unit_activity_needs_hinge_units():
    with pytest.raises(SplinescopeError, match="hinge"):
        unit_activity(nn.Sequential(nn.Linear(3, 3), nn.MaxPool1d(1)), torch.rand(4, 1, 3))
