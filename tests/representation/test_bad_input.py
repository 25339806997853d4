"""Bad input gets a SplinescopeError naming the argument; hypothesis properties of the measures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from splinescope.errors import SplinescopeError
from splinescope.representation import (
    calibration_error,
    cka,
    intrinsic_dimension,
    minibatch_cka,
    neural_collapse,
    pwcca,
    svcca,
)

X, Y = torch.randn(20, 4), torch.randn(20, 3)
NAN = X.clone()
NAN[3, 1] = float("nan")
INF = Y.clone()
INF[0, 0] = float("inf")
CONST = torch.ones(20, 3)
PAIRS = [
    ("cka", lambda a, b: cka(a, b)),
    ("cka-unbiased", lambda a, b: cka(a, b, estimator="unbiased")),
    ("cka-rbf", lambda a, b: cka(a, b, kernel="rbf")),
    ("minibatch", lambda a, b: minibatch_cka([(a, b)])),
    ("svcca", lambda a, b: svcca(a, b)),
    ("pwcca", lambda a, b: pwcca(a, b)),
]


@pytest.mark.parametrize("name,fn", PAIRS, ids=[p[0] for p in PAIRS])
def test_pair_measures_reject_bad_input(name, fn):
    with pytest.raises(SplinescopeError, match="x has 20 rows but y has 19|19"):
        fn(X, Y[:19])
    with pytest.raises(SplinescopeError, match=r"x.*non-finite"):
        fn(NAN, Y)
    with pytest.raises(SplinescopeError, match=r"y.*non-finite"):
        fn(X, INF)
    with pytest.raises(SplinescopeError, match=r"y.*constant"):
        fn(X, CONST)
    with pytest.raises(SplinescopeError, match=r"x.*shape"):
        fn(torch.randn(20), Y)


def test_too_few_points():
    with pytest.raises(SplinescopeError, match="at least 4 points, got n = 3"):
        cka(X[:3], Y[:3], estimator="unbiased")
    with pytest.raises(SplinescopeError, match="at least 2 points"):
        cka(X[:1], Y[:1])
    with pytest.raises(SplinescopeError, match="kernel"):
        cka(X, Y, kernel="poly")
    with pytest.raises(SplinescopeError, match="sigma"):
        cka(X, Y, kernel="rbf", sigma=-1.0)
    with pytest.raises(SplinescopeError, match="keep"):
        svcca(X, Y, keep=1.5)
    with pytest.raises(SplinescopeError, match="k: needs more than k = 20"):
        intrinsic_dimension(X, method="mle")
    with pytest.raises(SplinescopeError, match="at least 3 distinct"), pytest.warns(UserWarning):
        intrinsic_dimension(torch.ones(5, 2))


def test_other_measures_reject_bad_input():
    labels = torch.arange(4).repeat(5)
    with pytest.raises(SplinescopeError, match="features.*non-finite"):
        neural_collapse(NAN, labels)
    with pytest.raises(SplinescopeError, match=r"labels: expected shape \[20\]"):
        neural_collapse(X, labels[:10])
    with pytest.raises(SplinescopeError, match="labels: expected integer"):
        neural_collapse(X, labels.float())
    with pytest.raises(SplinescopeError, match="Sigma_B = 0"):
        neural_collapse(torch.ones(20, 4), labels)
    probs = torch.softmax(X, 1)
    with pytest.raises(SplinescopeError, match="probs: rows must sum to 1"):
        calibration_error(probs * 0.9, labels)
    with pytest.raises(SplinescopeError, match="probs: values must lie in"):
        calibration_error(X, labels)
    with pytest.raises(SplinescopeError, match="labels: class 4 out of range"):
        calibration_error(probs, labels + 1)
    with pytest.raises(SplinescopeError, match="n_bins"):
        calibration_error(probs, labels, n_bins=0)
    with pytest.raises(SplinescopeError, match="binning"):
        calibration_error(probs, labels, binning="quantile")
    with pytest.raises(SplinescopeError, match="x.*non-finite"):
        intrinsic_dimension(NAN)


DTYPES = st.sampled_from([torch.float32, torch.float64])


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(4, 40),
    d1=st.integers(1, 12),
    d2=st.integers(1, 12),
    seed=st.integers(0, 10**6),
    dtype=DTYPES,
    kernel=st.sampled_from(["linear", "rbf"]),
    estimator=st.sampled_from(["biased", "unbiased"]),
)
def test_cka_bounded_and_symmetric(n, d1, d2, seed, dtype, kernel, estimator):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d1, generator=g).to(dtype)
    y = torch.randn(n, d2, generator=g).to(dtype)
    r = cka(x, y, kernel=kernel, estimator=estimator)
    assert 0.0 <= r.value <= 1.0 and abs(r.raw_value) <= 1.0 + 1e-9
    assert r.value == pytest.approx(cka(y, x, kernel=kernel, estimator=estimator).value, abs=1e-6)
    mb = minibatch_cka([(x, y)], kernel=kernel)
    assert 0.0 <= mb.value <= 1.0


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(3, 40),
    d1=st.integers(1, 10),
    d2=st.integers(1, 10),
    seed=st.integers(0, 10**6),
    dtype=DTYPES,
)
def test_cca_correlations_in_unit_interval(n, d1, d2, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d1, generator=g).to(dtype)
    y = torch.randn(n, d2, generator=g).to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few points: the intersection warning is expected
        results = (svcca(x, y), pwcca(x, y))
    for r in results:
        assert bool(((r.correlations >= 0) & (r.correlations <= 1)).all())
        assert 0.0 <= r.value <= 1.0 + 1e-12
        assert r.correlations.numel() == min(r.dims_x, r.dims_y)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    c=st.integers(2, 6),
    n_bins=st.integers(1, 20),
    seed=st.integers(0, 10**6),
    dtype=DTYPES,
    binning=st.sampled_from(["width", "mass"]),
    norm=st.sampled_from(["l1", "l2", "max"]),
)
def test_calibration_bounded(n, c, n_bins, seed, dtype, binning, norm):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, c, generator=g), 1).to(dtype)
    labels = torch.randint(0, c, (n,), generator=g)
    r = calibration_error(probs, labels, n_bins=n_bins, binning=binning, norm=norm)
    assert 0.0 <= r.error <= 1.0 and int(r.counts.sum()) == n
    assert np.all(np.diff(r.edges.numpy()) >= 0) and r.edges[0] == 0 and r.edges[-1] == 1
    assert 0.0 <= r.brier <= 2.0 and np.isfinite(r.nll)
