"""Intrinsic dimension of d-balls and tori embedded in higher dimension (within 10 %)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from splinescope.representation import intrinsic_dimension
from splinescope.representation.dimension import neighbour_distances


def _embed(points: torch.Tensor, ambient: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(ambient, points.shape[1], generator=g, dtype=torch.float64))
    return points @ q.T + 1.5


def _ball(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, d, generator=g, dtype=torch.float64)
    v /= v.norm(dim=1, keepdim=True)
    return v * torch.rand(n, 1, generator=g, dtype=torch.float64) ** (1.0 / d)


def _torus(n: int, k: int, seed: int) -> torch.Tensor:
    """The flat k-torus: (cos t_i, sin t_i) for k independent angles, in R^(2k)."""
    g = torch.Generator().manual_seed(seed)
    t = 2 * math.pi * torch.rand(n, k, generator=g, dtype=torch.float64)
    return torch.cat([t.cos(), t.sin()], dim=1)


CASES = [("ball", 3, 10), ("ball", 5, 16), ("torus", 2, 12), ("torus", 3, 20)]


@pytest.mark.parametrize("method", ["twonn", "mle"])
@pytest.mark.parametrize("shape,d,ambient", CASES)
def test_known_manifolds_within_ten_percent(method, shape, d, ambient):
    pts = _ball(3000, d, 0) if shape == "ball" else _torus(3000, d, 0)
    r = intrinsic_dimension(_embed(pts, ambient, 1).float(), method=method, k=10)
    assert r.dimension == pytest.approx(d, rel=0.10), (shape, d, r.dimension)
    assert r.method == method and r.n == 3000


def test_variants_named_and_close():
    x = _embed(_torus(2000, 2, 3), 8, 4)
    fit = intrinsic_dimension(x)
    mle = intrinsic_dimension(x, twonn_fit="mle")
    lb = intrinsic_dimension(x, method="mle", mle_average="direct")
    mg = intrinsic_dimension(x, method="mle")
    assert "regression" in fit.estimator and "maximum likelihood" in mle.estimator
    assert "MacKay-Ghahramani" in mg.estimator and "MacKay" not in lb.estimator
    assert lb.dimension >= mg.dimension  # mean >= harmonic mean of the local estimates
    for r in (fit, mle, lb, mg):
        assert r.dimension == pytest.approx(2.0, rel=0.1)


def test_neighbours_are_exact():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(300, 7, generator=g) * 1e-3 + 100.0  # large offset: float32 cancellation
    got = neighbour_distances(x, 4).numpy()
    x64 = x.double().numpy()
    dist = np.linalg.norm(x64[:, None] - x64[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    np.testing.assert_allclose(got, np.sort(dist, axis=1)[:, :4], rtol=1e-12)


def test_duplicates_removed_with_a_warning():
    x = _embed(_ball(500, 3, 6), 6, 7)
    doubled = torch.cat([x, x[:40]])
    with pytest.warns(UserWarning, match="40 duplicate point"):
        r = intrinsic_dimension(doubled)
    assert r.n_duplicates_removed == 40 and r.n == 500
    assert r.dimension == intrinsic_dimension(x).dimension
