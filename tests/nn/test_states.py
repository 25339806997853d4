"""Unit states against direct computation; the 'cut' test against sign comparison."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from splinescope.nn import count_cut_units, record_states
from splinescope.nn.units import UnitLayer


def test_record_states_equal_direct_signs():
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 4), nn.Hardtanh(-0.5, 0.5))
    x = torch.randn(33, 5)
    states = record_states(model, x, batch_size=8)
    with torch.no_grad():
        a1 = model[0](x)
        a2 = model[2](torch.relu(a1))
    assert torch.equal(states["1"], torch.sign(a1).to(torch.int8))
    assert torch.equal(
        states["3"], torch.cat([torch.sign(a2 + 0.5), torch.sign(a2 - 0.5)], 1).to(torch.int8)
    )


def test_record_states_maxpool_indices():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2))
    x = torch.randn(4, 1, 6, 6)
    states = record_states(model, x)
    with torch.no_grad():
        _, idx = nn.functional.max_pool2d(model[0](x), 2, return_indices=True)
    assert torch.equal(states["1"], idx.flatten(1))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), min_size=12, max_size=12),
    threshold=st.sampled_from([0.0, 0.5, -1.0]),
)
def test_cut_test_equals_sign_comparison_with_first_vertex(values, threshold):
    raw = torch.tensor(values).reshape(6, 2)  # 2 neighbourhoods × 3 vertices, 2 units
    kind = "hinge" if threshold == 0.0 else "two_hinge"
    layer = UnitLayer("l", kind, 2, (2,), "fx", "test", (threshold,))
    signs = torch.sign(raw - threshold).reshape(2, 3, 2)
    expected = (signs[:, 1:] != signs[:, :1]).any(dim=1).sum(dim=1)
    assert torch.equal(count_cut_units(layer, raw, 3), expected)


class InputDependent(nn.Module):
    """Untraceable: ``extra`` and ``extra_act`` run only for inputs whose sum is positive."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.extra, self.extra_act = nn.Linear(3, 3), nn.Linear(3, 3), nn.ReLU()

    def forward(self, x):
        h = self.fc(x)
        if x.sum() > 0:
            h = self.extra_act(self.extra(h))
        return h


def test_a_layer_missing_from_some_batches_is_an_error_that_names_it():
    import pytest

    from splinescope import SplinescopeError

    x = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    with pytest.raises(SplinescopeError, match="extra_act"):
        record_states(InputDependent(), x, batch_size=1)
    with pytest.raises(SplinescopeError, match="'extra'"):
        record_states(InputDependent(), x, ["fc", "extra"], batch_size=1)
