"""Finding partition units: module and functional activations, hooks fallback, selection."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from splinescope import NoPartitionUnitsError, SplinescopeError
from splinescope.nn import describe


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(8, 8)
        self.c = nn.Linear(8, 8)
        self.d = nn.Linear(8, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        h = F.relu(self.a(x))
        h = torch.relu(self.b(h))
        h = self.c(h).relu()
        h = F.hardtanh(self.d(h), -0.5, 2.0)
        return self.out(torch.tanh(h))


def test_functional_activations_found_by_fx():
    units = describe(Functional(), torch.randn(2, 6))
    assert units.traced and units.trace_error is None
    assert units.names == ["relu", "relu_1", "relu_2", "hardtanh"]
    assert [layer.source for layer in units.layers] == [
        "F.relu",
        "torch.relu",
        "Tensor.relu",
        "F.hardtanh",
    ]
    two = units.layers[-1]
    assert two.kind == "two_hinge" and two.thresholds == (-0.5, 2.0) and two.n_units == 16
    assert {layer.found_by for layer in units.layers} == {"fx"}


def test_module_activations_names_kinds_counts():
    model = nn.Sequential(
        nn.Linear(4, 5),
        nn.LeakyReLU(0.1),
        nn.Linear(5, 6),
        nn.PReLU(),
        nn.Linear(6, 7),
        nn.ReLU6(),
        nn.Linear(7, 3),
        nn.GELU(),
        nn.Linear(3, 3),
        nn.Tanh(),
    )
    units = describe(model, torch.randn(3, 4))
    frame = units.to_frame()
    assert frame["name"].tolist() == ["1", "3", "5", "7"]
    assert frame["kind"].tolist() == ["hinge", "hinge", "two_hinge", "smooth"]
    assert frame["n_units"].tolist() == [5, 6, 14, 3]
    assert units.layers[3].smooth
    assert ("9", "smooth saturating activation without a hinge") in units.skipped


def test_shared_module_called_twice_gets_two_names():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.act = nn.Linear(3, 4), nn.Linear(4, 4), nn.ReLU()

        def forward(self, x):
            return self.act(self.fc2(self.act(self.fc1(x))))

    assert describe(Shared(), torch.randn(1, 3)).names == ["act", "act#1"]


def test_maxpool_units_and_unused_module_skipped():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.pool, self.unused = (
                nn.Conv2d(1, 2, 3, padding=1),
                nn.MaxPool2d(2),
                nn.ReLU(),
            )

        def forward(self, x):
            return F.max_pool2d(self.pool(F.relu(self.conv(x))), 2)

    units = describe(Net(), torch.randn(1, 1, 8, 8))
    assert units.names == ["relu", "pool", "max_pool2d"]
    assert [layer.kind for layer in units.layers] == ["hinge", "argmax", "argmax"]
    assert [layer.n_units for layer in units.layers] == [128, 32, 8]
    assert ("unused", "defined but never called in forward") in units.skipped


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.act, self.out = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            x = x * 1.0
        return self.out(F.relu(self.act(self.fc(x))))


def test_hook_fallback_reports_why_and_misses_functional_calls():
    units = describe(Untraceable(), torch.randn(2, 3))
    assert not units.traced
    assert "TraceError" in units.trace_error or "symbolic" in units.trace_error.lower()
    assert units.names == ["act"] and units.layers[0].found_by == "hook"


def test_glob_selection_and_module_outputs():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))
    assert describe(model, torch.randn(1, 4), layers="3").names == ["3"]
    assert describe(model, torch.randn(1, 4), layers=["*"]).names == ["1", "3"]
    outputs = describe(model, torch.randn(1, 4), layers=["0", "2", "4"])
    assert outputs.names == ["0", "2", "4"]
    assert [layer.kind for layer in outputs.layers] == ["output"] * 3
    assert [layer.n_units for layer in outputs.layers] == [5, 6, 2]


def test_module_outputs_through_hooks_for_untraceable_models():
    units = describe(Untraceable(), torch.randn(2, 3), layers=["fc", "out"])
    assert units.names == ["fc", "out"] and not units.traced


def test_no_partition_units_is_an_error_that_says_so():
    with pytest.raises(NoPartitionUnitsError, match="no partition-defining units"):
        describe(nn.Sequential(nn.Linear(3, 3), nn.Tanh()), torch.randn(1, 3))


def test_bad_selection_and_bad_input():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
    with pytest.raises(SplinescopeError, match=r"layers: 'x\*' matches no partition unit"):
        describe(model, torch.randn(1, 4), layers="x*")
    with pytest.raises(SplinescopeError, match="example_input"):
        describe(model, torch.randn(1, 7))
    with pytest.raises(SplinescopeError, match="model"):
        describe("not a model", torch.randn(1, 4))
