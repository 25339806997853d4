"""SVCCA and PWCCA against scipy's principal angles and a textbook CCA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from representation_oracles import cca_naive
from scipy.linalg import subspace_angles

from splinescope.representation import pwcca, svcca


def _pair(n=200, d1=8, d2=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d1)) @ np.diag(np.linspace(3, 0.2, d1)) + 5.0
    y = x[:, :d2] @ rng.normal(size=(d2, d2)) + 0.8 * rng.normal(size=(n, d2))
    return x, y


def test_pwcca_correlations_are_principal_angle_cosines():
    x, y = _pair()
    r = pwcca(torch.tensor(x), torch.tensor(y))
    cos = np.sort(np.cos(subspace_angles(x - x.mean(0), y - y.mean(0))))[::-1]
    np.testing.assert_allclose(r.correlations.numpy(), cos, atol=1e-10)
    assert r.dims_x == 8 and r.dims_y == 6 and "Morcos" in r.variant


def test_pwcca_weights_match_textbook_cca():
    x, y = _pair(seed=1)
    r = pwcca(torch.tensor(x), torch.tensor(y))
    rho, h, xc = cca_naive(x, y)
    alpha = np.abs(h.T @ xc).sum(axis=1)
    alpha /= alpha.sum()
    np.testing.assert_allclose(r.correlations.numpy(), rho, atol=1e-9)
    np.testing.assert_allclose(r.weights.numpy(), alpha, atol=1e-9)
    assert r.value == pytest.approx(float(alpha @ rho), abs=1e-9)


def test_svcca_is_cca_of_the_kept_directions():
    x, y = _pair(seed=2)
    r = svcca(torch.tensor(x), torch.tensor(y), keep=0.9)

    def reduce(a):
        ac = a - a.mean(0)
        u, s, vt = np.linalg.svd(ac, full_matrices=False)
        energy = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.searchsorted(energy, 0.9) + 1)
        return ac @ vt[:k].T

    rx, ry = reduce(x), reduce(y)
    cos = np.sort(np.cos(subspace_angles(rx, ry)))[::-1]
    assert (r.dims_x, r.dims_y) == (rx.shape[1], ry.shape[1])
    np.testing.assert_allclose(r.correlations.numpy(), cos, atol=1e-10)
    assert r.value == pytest.approx(cos.mean(), abs=1e-10)


def test_self_similarity_and_invariance():
    x, y = _pair(seed=3)
    xt = torch.tensor(x)
    assert svcca(xt, xt).value == pytest.approx(1.0, abs=1e-10)
    assert pwcca(xt, xt).value == pytest.approx(1.0, abs=1e-10)
    a = torch.randn(8, 8, dtype=torch.float64)  # any invertible map: CCA is invariant
    assert pwcca(xt @ a + 2, torch.tensor(y)).correlations.numpy() == pytest.approx(
        pwcca(xt, torch.tensor(y)).correlations.numpy(), abs=1e-8
    )


def test_too_many_directions_warns():
    x, y = _pair(n=10, d1=8, d2=6)
    with pytest.warns(UserWarning, match="by construction"):
        pwcca(torch.tensor(x), torch.tensor(y))
