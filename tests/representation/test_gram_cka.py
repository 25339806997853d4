"""CKA from kept Gram matrices against the naive O(n^2) HSIC written from the formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from representation_oracles import cka_from, hsic_biased, hsic_u_statistic, linear_gram

from splinescope.errors import SplinescopeError
from splinescope.representation import cka, feature_gram, gram_cka


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_gram_cka_of_feature_grams_is_linear_cka(estimator):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 9, generator=g, dtype=torch.float64) + torch.randn(40, 9, generator=g)
    got = gram_cka(feature_gram(x), feature_gram(y), estimator=estimator)
    hsic = hsic_biased if estimator == "biased" else hsic_u_statistic
    want = cka_from(hsic, linear_gram(x.numpy()), linear_gram(y.numpy()))
    assert got.raw_value == pytest.approx(want, rel=1e-10)
    assert got.raw_value == pytest.approx(cka(x, y, estimator=estimator).raw_value, rel=1e-10)
    assert got.estimator == estimator and "HSIC" in got.variant


def test_feature_gram_is_centred_and_flattens_conv_features():
    x = torch.rand(10, 2, 3, 3, dtype=torch.float64)
    k = feature_gram(x)
    xc = x.flatten(1) - x.flatten(1).mean(0)
    np.testing.assert_allclose(k.numpy(), (xc @ xc.T).numpy(), atol=1e-12)
    assert feature_gram(x, conv="mean").shape == (10, 10)


def test_gram_cka_refuses_bad_grams():
    k = feature_gram(torch.rand(6, 3))
    with pytest.raises(SplinescopeError, match="k: expected a square Gram"):
        gram_cka(k[:, :5], k)
    with pytest.raises(SplinescopeError, match="k has 6 rows but l_ has 5"):
        gram_cka(k, k[:5, :5])
    with pytest.raises(SplinescopeError, match="needs at least 4 points"):
        gram_cka(k[:3, :3], k[:3, :3])
