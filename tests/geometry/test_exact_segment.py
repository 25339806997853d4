"""Exact regions along a segment against dense sampling, bisection and closed forms."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.codes import states_to_bits
from splinescope.geometry.exact import regions_on_segment
from splinescope.nn import describe, record_states


def sampled_states(model, a, b, t):
    """Full state rows (every layer, any kind) at x(t) by a plain float64 forward pass."""
    double = copy.deepcopy(model).double()
    start, step = a.double().reshape(-1), (b.double() - a.double()).reshape(-1)
    x = (start[None] + torch.as_tensor(t)[:, None] * step[None]).reshape(len(t), *a.shape)
    states = record_states(double, x, batch_size=50_000)
    units = describe(double, x[:1])
    return states, units


def full_rows(states):
    return np.concatenate([s.numpy().astype(np.int64) for s in states.values()], 1)


def bisect_change(model, a, b, lo, hi, rounds=6):
    """The t in [lo, hi] where the state row changes: each round samples 65 points and keeps
    the sub-interval of the first change (64× narrower per round)."""
    left = full_rows(sampled_states(model, a, b, np.array([lo]))[0])[0]
    for _ in range(rounds):
        ts = np.linspace(lo, hi, 65)
        rows = full_rows(sampled_states(model, a, b, ts)[0])
        first = int(np.argmax((rows != left).any(axis=1)))
        lo, hi = ts[first - 1], ts[first]
    return 0.5 * (lo + hi)


def mlp(widths, seed, activation=nn.ReLU):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def test_dense_sampling_and_bisection():
    model = mlp((6, 24, 24, 24, 4), seed=0)
    a, b = torch.randn(6) * 2, torch.randn(6) * 2
    part = regions_on_segment(model, a, b)
    t = np.linspace(0, 1, 100_001)
    states, units = sampled_states(model, a, b, t)
    rows = full_rows(states)
    change = np.nonzero((rows[1:] != rows[:-1]).any(axis=1))[0]
    # Along a segment a convex region is entered once: patterns never recur.
    assert len({r.tobytes() for r in rows}) == len(change) + 1
    assert part.n_regions >= len(change) + 1
    if np.diff(np.concatenate([[0.0], part.breakpoints, [1.0]])).min() > 3 / len(t):
        assert part.n_regions == len(change) + 1
    # Each sampled change, located by bisection, is one of the exact breakpoints.
    for i in change[:12]:
        where = bisect_change(model, a, b, t[i], t[i + 1])
        assert np.abs(part.breakpoints - where).min() < 1e-9
    # Codes of the sampled points equal the codes of the pieces they fall in (away from
    # breakpoints by 1e-9).
    bits = np.concatenate(
        [states_to_bits(states[layer.name].numpy(), layer.kind) for layer in units.layers], 1
    )
    piece = part.piece_of(t)
    far = np.abs(t[:, None] - part.breakpoints[None]).min(axis=1) > 1e-9
    np.testing.assert_array_equal(np.packbits(bits, axis=1)[far], part.codes[piece[far]])
    # Per-layer crossings equal the sampled per-layer sign changes.
    sampled = [
        int((states[n].numpy()[1:] != states[n].numpy()[:-1]).sum()) for n in part.layer_names
    ]
    if part.n_regions == len(change) + 1:
        assert list(part.layer_crossings) == sampled
    # The affine pieces reproduce the model.
    x = a.double()[None] + torch.as_tensor(t[::97])[:, None] * (b.double() - a.double())[None]
    with torch.no_grad():
        reference = copy.deepcopy(model).double()(x).numpy()
    np.testing.assert_allclose(part.evaluate(t[::97]), reference, rtol=0, atol=1e-10)


def test_closed_form_one_dimensional():
    """x ∈ R: units x − k for k = 1..5 on the segment [0, 6] break at t = k/6."""
    layer = nn.Linear(1, 5)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.copy_(-torch.arange(1.0, 6.0))
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(5, 1))
    part = regions_on_segment(model, torch.zeros(1), torch.full((1,), 6.0))
    np.testing.assert_allclose(part.breakpoints, np.arange(1, 6) / 6, atol=1e-15)
    assert part.n_regions == 6
    assert list(part.layer_crossings) == [5]
    # Number of active units grows by one per piece.
    np.testing.assert_array_equal(part.bits().sum(axis=1), np.arange(6))
    # Units crossing exactly at the ends are not breakpoints; duplicated units give one.
    layer2 = nn.Linear(1, 4)
    with torch.no_grad():
        layer2.weight.fill_(1.0)
        layer2.bias.copy_(torch.tensor([0.0, -6.0, -3.0, -3.0]))
    part = regions_on_segment(
        nn.Sequential(layer2, nn.ReLU()), torch.zeros(1), torch.full((1,), 6.0)
    )
    np.testing.assert_allclose(part.breakpoints, [0.5])
    assert list(part.layer_crossings) == [2]


def test_bias_free_segment_through_origin():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Linear(3, 8, bias=False), nn.ReLU(), nn.Linear(8, 8, bias=False), nn.ReLU()
    )
    a = torch.randn(3)
    part = regions_on_segment(model, -a, a)
    # Positive homogeneity: every pattern change happens at the origin, t = 1/2.
    np.testing.assert_allclose(part.breakpoints, [0.5], atol=1e-12)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm1d(4)
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(4, 4, 3, padding=1)
        self.act = nn.ReLU6()
        self.fc = nn.Linear(4 * 4, 2)

    def forward(self, x):
        h = self.pool(torch.relu(self.bn(self.conv(x))))
        h = h + self.act(self.conv2(h) * 3.0)
        return self.fc(torch.flatten(h, 1))


def test_conv1d_maxpool_residual_along_segment():
    torch.manual_seed(4)
    model = CNN().eval()
    a, b = torch.randn(2, 8) * 2, torch.randn(2, 8) * 2
    part = regions_on_segment(model, a, b)
    t = np.linspace(0, 1, 20_001)
    rows = full_rows(sampled_states(model, a, b, t)[0])
    change = np.nonzero((rows[1:] != rows[:-1]).any(axis=1))[0]
    assert part.n_regions >= len(change) + 1
    for i in change[:: max(1, len(change) // 3)]:
        where = bisect_change(model, a, b, t[i], t[i + 1])
        assert np.abs(part.breakpoints - where).min() < 1e-9
    x = (
        a.double()[None]
        + torch.as_tensor(t[::101])[:, None, None] * (b.double() - a.double())[None]
    )
    with torch.no_grad():
        reference = copy.deepcopy(model).double()(x).numpy()
    np.testing.assert_allclose(part.evaluate(t[::101]), reference, rtol=0, atol=1e-9)
    assert "pool" in part.layer_names


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.integers(1, 16), depth=st.integers(1, 3))
def test_hypothesis_breakpoints_are_exact(seed, width, depth):
    model = mlp((3, *[width] * depth, 2), seed=seed, activation=lambda: nn.LeakyReLU(0.1))
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(3, generator=g) * 3, torch.randn(3, generator=g) * 3
    part = regions_on_segment(model, a, b)
    assert np.all(np.diff(part.breakpoints) > 0)
    assert len(np.unique(part.codes, axis=0)) == part.n_regions
    # Just left and right of each breakpoint the forward pass gives the two pieces' patterns.
    eps = 1e-9
    if len(part.breakpoints):
        sides = np.stack([part.breakpoints - eps, part.breakpoints + eps], 1).reshape(-1)
        rows = full_rows(sampled_states(model, a, b, sides)[0])
        rows = rows.reshape(len(part.breakpoints), 2, -1)
        assert (rows[:, 0] != rows[:, 1]).any(axis=1).all()
    t = np.linspace(0, 1, 2001)
    x = a.double()[None] + torch.as_tensor(t)[:, None] * (b.double() - a.double())[None]
    with torch.no_grad():
        reference = copy.deepcopy(model).double()(x).numpy()
    np.testing.assert_allclose(part.evaluate(t), reference, rtol=0, atol=1e-9)


def test_bad_input():
    model = mlp((3, 4, 1), seed=0)
    with pytest.raises(SplinescopeError, match="identical"):
        regions_on_segment(model, torch.ones(3), torch.ones(3))
    with pytest.raises(SplinescopeError, match="b: shape"):
        regions_on_segment(model, torch.ones(3), torch.ones(4))
    with pytest.raises(SplinescopeError, match="does not fit"):
        regions_on_segment(model, torch.ones(5), torch.zeros(5))
    with pytest.raises(SplinescopeError, match="NaN"):
        regions_on_segment(model, torch.tensor([0.0, float("nan"), 1.0]), torch.zeros(3))
    with pytest.raises(SplinescopeError, match="SiLU"):
        regions_on_segment(nn.Sequential(nn.Linear(3, 3), nn.SiLU()), torch.ones(3), torch.zeros(3))
