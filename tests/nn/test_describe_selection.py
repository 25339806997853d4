"""Selections mean what they say: every requested name is measured, in execution order, and
each one's values equal what it gives when selected alone — for describe, record_states,
local_complexity and activation_codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from published_lc import naive_counts
from splinescope import SplinescopeError, local_complexity
from splinescope.geometry import cross_polytope, ortho_frame
from splinescope.geometry.codes import activation_codes
from splinescope.nn import describe, record_states


def nested() -> nn.Sequential:
    """A Sequential inside a Sequential: ``0`` is a module whose inner units are units too."""
    torch.manual_seed(0)
    inner = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
    return nn.Sequential(inner, nn.ReLU(), nn.Linear(8, 2))


class Block(nn.Module):
    """``relu(x + fc(relu(x)))`` with functional ReLUs (fx names them, not module paths)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.fc(torch.relu(x)))


class Residual(nn.Module):
    """inp -> relu -> b0 -> b1 -> mid -> relu -> head; all six ReLUs have the same width."""

    def __init__(self, d_in: int = 5, width: int = 6) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.inp = nn.Linear(d_in, width)
        self.b0, self.b1 = Block(width), Block(width)
        self.mid = nn.Linear(width, width)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.b1(self.b0(torch.relu(self.inp(x))))
        return self.head(torch.relu(self.mid(h)))


#: Every selectable name of each model, in execution order (written by hand: the oracle).
NESTED_ORDER = ["0.0", "0.1", "0.2", "0", "1", "2"]
NESTED_UNITS = ["0.1", "1"]
RESIDUAL_ORDER = [
    "inp",
    "relu",
    "relu_1",
    "b0.fc",
    "relu_2",
    "b0",
    "relu_3",
    "b1.fc",
    "relu_4",
    "b1",
    "mid",
    "relu_5",
    "head",
]
RESIDUAL_UNITS = ["relu", "relu_1", "relu_2", "relu_3", "relu_4", "relu_5"]


def _in_order(selection: list[str], order: list[str]) -> list[str]:
    return [name for name in order if name in selection]


def test_nested_module_with_inner_linear():
    units = describe(nested(), torch.rand(1, 4), ["0", "0.0"])
    assert units.names == ["0.0", "0"]
    assert [layer.kind for layer in units.layers] == ["output", "output"]


def test_nested_module_with_inner_relu():
    units = describe(nested(), torch.rand(1, 4), ["0", "0.1"])
    assert units.names == ["0.1", "0"]
    assert [layer.kind for layer in units.layers] == ["hinge", "output"]


def test_nested_module_with_glob():
    assert describe(nested(), torch.rand(1, 4), ["0", "*"]).names == ["0.1", "0", "1"]


def test_residual_block_with_its_inner_layer_and_a_functional_relu():
    model = Residual()
    x = torch.randn(1, 5)
    assert describe(model, x, ["b1", "b1.fc"]).names == ["b1.fc", "b1"]
    assert describe(model, x, ["b1", "relu_3"]).names == ["relu_3", "b1"]
    assert describe(model, x, ["relu_5", "b1"]).names == ["b1", "relu_5"]
    assert describe(model, x).names == RESIDUAL_UNITS


def test_functional_relu_reads_the_same_tensor_whatever_else_is_selected():
    model = Residual()
    x = torch.randn(40, 5)
    with torch.no_grad():
        b0 = model.b0(torch.relu(model.inp(x)))  # relu_3's pre-activation is b0's output
    expected = torch.sign(b0).to(torch.int8)
    assert torch.equal(record_states(model, x, ["relu_3"])["relu_3"], expected)
    assert torch.equal(record_states(model, x, ["b1", "relu_3"])["relu_3"], expected)


@settings(max_examples=25, deadline=None)
@given(
    selection=st.lists(st.sampled_from(RESIDUAL_ORDER), min_size=1, max_size=6, unique=True),
    seed=st.integers(0, 2**16),
)
def test_residual_states_equal_single_name_states(selection, seed):
    model = Residual()
    x = torch.randn(17, 5, generator=torch.Generator().manual_seed(seed))
    assert describe(model, x[:1], selection).names == _in_order(selection, RESIDUAL_ORDER)
    states = record_states(model, x, selection, batch_size=5)
    assert list(states) == _in_order(selection, RESIDUAL_ORDER)
    for name in selection:
        assert torch.equal(states[name], record_states(model, x, [name])[name]), name


@settings(max_examples=25, deadline=None)
@given(
    selection=st.lists(
        st.sampled_from([*NESTED_ORDER, "*", "0.*"]), min_size=1, max_size=4, unique=True
    ),
    seed=st.integers(0, 2**16),
)
def test_nested_states_equal_single_name_states(selection, seed):
    model = nested()
    x = torch.randn(11, 4, generator=torch.Generator().manual_seed(seed))
    expected = set()
    for pattern in selection:
        expected |= {"*": set(NESTED_UNITS), "0.*": {"0.1"}}.get(pattern, {pattern})
    states = record_states(model, x, selection)
    assert list(states) == _in_order(sorted(expected), NESTED_ORDER)
    for name in expected:
        assert torch.equal(states[name], record_states(model, x, [name])[name]), name


def _hull(points: torch.Tensor, n_vertices: int, radius: float) -> torch.Tensor:
    frame = ortho_frame(tuple(points.shape[1:]), n_vertices // 2, seed=3, dtype=points.dtype)
    return cross_polytope(points, frame, radius)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), radius=st.sampled_from([0.05, 0.3, 1.0]))
def test_local_complexity_of_a_mixed_selection_matches_the_published_algorithm(seed, radius):
    model = Residual()
    points = torch.randn(13, 5, generator=torch.Generator().manual_seed(seed))
    hull = _hull(points, 8, radius)
    lc = local_complexity(model, points, radius=radius, hull=hull, layers=["b1", "relu_3"])
    assert lc.layer_names == ("relu_3", "b1")
    # relu_3 reads b0's output (its pre-activation); b1 is read at its output.
    assert torch.equal(lc.counts, naive_counts(model, hull, [model.b0, model.b1]))
    alone = local_complexity(model, points, radius=radius, hull=hull, layers=["relu_3"])
    assert torch.equal(lc.counts[:, :1], alone.counts)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_local_complexity_nested_module_with_inner_units(seed):
    model = nested()
    points = torch.randn(9, 4, generator=torch.Generator().manual_seed(seed))
    hull = _hull(points, 8, 0.5)
    lc = local_complexity(model, points, radius=0.5, hull=hull, layers=["0", "0.0", "0.1"])
    assert lc.layer_names == ("0.0", "0.1", "0")
    inner = model[0]
    outputs = naive_counts(model, hull, [inner[0], inner])
    relu = naive_counts(model, hull, [inner[1]], use_input=True)
    assert torch.equal(lc.counts, torch.stack([outputs[:, 0], relu[:, 0], outputs[:, 1]], 1))


def test_local_complexity_reads_a_module_before_the_first_affine_layer():
    """Flatten's output lies before the first Linear: the shortcut that starts at the Linear
    must not skip it (it was silently counted as 0)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    points = torch.randn(7, 2, 3)
    lc = local_complexity(model, points, radius=0.8, n_vertices=6, layers=["0", "2"], seed=3)
    frame = ortho_frame((2, 3), 3, seed=3)
    hull = cross_polytope(points, frame, 0.8)
    reference = naive_counts(model, hull, [model[0]])
    assert reference.sum() > 0
    assert torch.equal(lc.counts[:, 0], reference[:, 0])


@settings(max_examples=15, deadline=None)
@given(
    selection=st.lists(st.sampled_from(RESIDUAL_ORDER), min_size=1, max_size=5, unique=True),
    seed=st.integers(0, 2**16),
)
def test_activation_codes_blocks_equal_single_name_codes(selection, seed):
    model = Residual()
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(seed))
    codes = activation_codes(model, x, selection)
    assert list(codes.layer_names) == _in_order(selection, RESIDUAL_ORDER)
    bits = codes.bits()
    start = 0
    for name, width in zip(codes.layer_names, codes.layer_bits):
        np.testing.assert_array_equal(
            bits[:, start : start + width], activation_codes(model, x, [name]).bits()
        )
        start += width
    assert start == codes.n_bits


class UntraceableNested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nested()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            x = x * 1.0
        return self.net(x)


def test_hook_fallback_agrees_with_the_traced_graph():
    traced, hooked = nested(), UntraceableNested()
    x = torch.randn(12, 4)
    selection = ["0", "0.0", "0.1", "1"]
    ours = record_states(hooked, x, [f"net.{name}" for name in selection])
    reference = record_states(traced, x, selection)
    assert list(ours) == [f"net.{name}" for name in reference]
    for name, states in reference.items():
        assert torch.equal(ours[f"net.{name}"], states)


class Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act, self.spare = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Pair(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, -x


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.pair = nn.Linear(3, 4), Pair()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.pair(self.fc(x))
        return torch.relu(a + b)


def test_a_module_never_called_is_an_error_that_names_it():
    with pytest.raises(SplinescopeError, match=r"'spare'.*never called"):
        describe(Unused(), torch.randn(1, 3), ["act", "spare"])


def test_a_module_without_one_tensor_output_is_an_error_that_names_it():
    with pytest.raises(SplinescopeError, match=r"'pair'"):
        describe(TupleOut(), torch.randn(1, 3), ["pair"])


def test_a_module_inside_an_opaque_module_is_an_error_that_names_both():
    model = nn.Sequential(
        nn.Linear(4, 8), nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), nn.ReLU()
    )
    units = describe(model, torch.randn(1, 3, 4))
    assert any(name == "1" and "opaque" in reason for name, reason in units.skipped)
    with pytest.raises(SplinescopeError, match=r"'1\.linear1'.*'1'"):
        describe(model, torch.randn(1, 3, 4), ["2", "1.linear1"])


def test_repeated_module_calls_are_each_selectable():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.fc(torch.relu(self.fc(x))))

    x = torch.randn(6, 3)
    assert describe(Twice(), x[:1], ["fc"]).names == ["fc", "fc#1"]
    assert describe(Twice(), x[:1], ["fc#1", "relu"]).names == ["relu", "fc#1"]
    with torch.no_grad():
        model = Twice()
        second = model.fc(torch.relu(model.fc(x)))
    assert torch.equal(record_states(model, x, ["fc#1"])["fc#1"], torch.sign(second).to(torch.int8))


def test_functional_calls_that_are_not_units_are_listed_as_skipped():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.fc(x)).clamp(min=0) + torch.relu(x)

    units = describe(Net(), torch.randn(1, 3))
    assert units.names == ["relu"]
    reasons = dict(units.skipped)
    assert "saturating" in reasons["tanh"] and "piecewise" in reasons["clamp"]
