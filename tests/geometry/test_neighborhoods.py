"""Neighbourhoods: a frame never has fewer directions than asked, directions never broadcast."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from splinescope import SplinescopeError
from splinescope.geometry import cross_polytope, ortho_frame
from splinescope.geometry.neighborhoods import ball_directions


@settings(max_examples=30, deadline=None)
@given(dim=st.integers(1, 8), k=st.integers(1, 8))
def test_ortho_frame_has_exactly_the_directions_asked_or_says_why(dim, k):
    if k > dim:
        with pytest.raises(SplinescopeError, match="n_directions"):
            ortho_frame((dim,), k)
        return
    frame = ortho_frame((dim,), k, dtype=torch.float64)
    assert frame.shape == (k, dim)
    assert torch.allclose(frame @ frame.T, torch.eye(k, dtype=torch.float64), atol=1e-12)


def test_ball_directions_need_a_positive_count():
    with pytest.raises(SplinescopeError, match="n_directions"):
        ball_directions(torch.arange(2), 0, (3,))


def test_cross_polytope_rejects_directions_that_would_broadcast():
    points = torch.randn(4, 3)
    assert cross_polytope(points, torch.randn(2, 3), 0.1).shape == (4, 4, 3)
    assert cross_polytope(points, torch.randn(4, 2, 3), 0.1).shape == (4, 4, 3)
    for bad in (torch.randn(1, 2, 3), torch.randn(2, 4), torch.randn(0, 3)):
        with pytest.raises(SplinescopeError, match="directions"):
            cross_polytope(points, bad, 0.1)
