"""Unit states against direct computation; the 'cut' test against sign comparison."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from splinescope.nn import count_cut_units, record_states
from splinescope.nn.states import count_cut_units_on_frame, frame_reach, shared_frame_countable
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


# --- the first affine layer counted from the centres (count_cut_units_on_frame) -------------


def _vertex_values(center: torch.Tensor, frame: torch.Tensor, include_center: bool):
    """``fl(c ± f_k)`` (and ``c``) at every vertex, in the published vertex order, ``[B·V, U]``."""
    parts = [center[:, None] + frame[None], center[:, None] - frame[None]]
    if include_center:
        parts.append(center[:, None])
    return torch.cat(parts, dim=1).flatten(0, 1)


def _both_counts(center, frame, include_center=False, kind="hinge"):
    layer = UnitLayer("l", kind, center.shape[1], (center.shape[1],), "fx", "test", (0.0,))
    n_vertices = 2 * frame.shape[0] + int(include_center)
    vertex = count_cut_units(layer, _vertex_values(center, frame, include_center), n_vertices)
    analytic = count_cut_units_on_frame(center, frame_reach(frame))
    return vertex, analytic


# Values that make ties: zeros of both signs, exact opposites, equal magnitudes, tiny and huge.
_TIES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 1e-7, -1e-7, 2.0**-60, 6e4, -6e4]


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    n_points=st.integers(1, 4),
    n_directions=st.integers(1, 5),
    n_units=st.integers(1, 6),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    include_center=st.booleans(),
    kind=st.sampled_from(["hinge", "output", "smooth"]),
)
def test_frame_count_equals_vertex_count_bit_for_bit(
    data, n_points, n_directions, n_units, dtype, include_center, kind
):
    """Ties included: c = 0, c = ±max|f_k| (a vertex exactly at 0), f = 0, c = f = 0."""
    value = st.one_of(
        st.sampled_from(_TIES),
        st.floats(-10, 10, allow_nan=False, width=32 if dtype == torch.float32 else 64),
    )
    frame = torch.tensor(
        data.draw(
            st.lists(value, min_size=n_directions * n_units, max_size=n_directions * n_units)
        ),
        dtype=dtype,
    ).reshape(n_directions, n_units)
    center = torch.tensor(
        data.draw(st.lists(value, min_size=n_points * n_units, max_size=n_points * n_units)),
        dtype=dtype,
    ).reshape(n_points, n_units)
    # Put some centres exactly on a vertex's boundary: c = ±f_k for a drawn k.
    for i in range(n_points):
        for j in range(n_units):
            choice = data.draw(st.integers(0, 3))
            if choice == 1:
                k = data.draw(st.integers(0, n_directions - 1))
                center[i, j] = frame[k, j] * data.draw(st.sampled_from([1.0, -1.0]))
            elif choice == 2:
                center[i, j] = frame[:, j].abs().max() * data.draw(st.sampled_from([1.0, -1.0]))
    vertex, analytic = _both_counts(center, frame, include_center, kind)
    if analytic is None:  # refused near underflow: the vertex count is used instead
        return
    assert torch.equal(analytic, vertex)


def test_frame_count_ties_constructed():
    frame = torch.tensor([[1.0, 0.0, 2.0, 0.0, 1.0], [-0.5, 0.0, 0.0, 0.0, -1.0]])
    center = torch.tensor(
        [
            [1.0, 0.0, -2.0, 5.0, 0.0],  # c = max|f|: a vertex at 0 -> cut; f = 0, c = 0 -> not
            [0.5, 0.0, 2.1, -5.0, -1.0],  # inside -> cut; outside -> not; c = -max|f| -> cut
        ]
    )
    vertex, analytic = _both_counts(center, frame)
    assert vertex.tolist() == [3, 2]
    assert torch.equal(analytic, vertex)


def test_frame_count_non_finite_values_follow_the_vertex_test():
    inf, nan = float("inf"), float("nan")
    frame = torch.tensor([[1.0, inf, 1.0, nan, inf, 0.0], [0.0, 1.0, inf, 1.0, 1.0, 0.0]])
    center = torch.tensor([[inf, 0.5, inf, 0.5, -inf, nan], [-inf, inf, 3.0, nan, 2.0, inf]])
    vertex, analytic = _both_counts(center, frame)
    assert torch.equal(analytic, vertex)


def test_frame_count_refuses_values_near_underflow():
    tiny = torch.finfo(torch.float32).tiny
    center = torch.tensor([[tiny * 4, 1.0]])
    frame = torch.tensor([[tiny * 3, 0.5]])
    assert count_cut_units_on_frame(center, frame_reach(frame)) is None
    assert count_cut_units_on_frame(torch.zeros(1, 2), torch.zeros(2)) is not None


def test_frame_countable_kinds():
    def layer(kind, thresholds=(0.0,)):
        return UnitLayer("l", kind, 1, (1,), "fx", "test", thresholds)

    assert shared_frame_countable(layer("hinge"))
    assert shared_frame_countable(layer("output"))
    assert not shared_frame_countable(layer("two_hinge", (-1.0, 1.0)))
    assert not shared_frame_countable(layer("argmax", ()))
