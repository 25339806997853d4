"""Neural collapse on a simplex ETF (all NC = 0) and against a naive d x d computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.representation import neural_collapse


def _etf(c: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = (torch.eye(c) - torch.full((c, c), 1.0 / c)) * (c / (c - 1)) ** 0.5
    q, _ = torch.linalg.qr(torch.randn(d, c, generator=g, dtype=torch.float64))
    return m.to(torch.float64) @ q.T  # [c, d], rows: equinorm, cos = -1/(c-1)


def test_simplex_etf_collapses_fully():
    c, d = 5, 12
    m = _etf(c, d)
    labels = torch.arange(c).repeat(20)
    feats = 3.0 * m[labels] + 7.0
    bias = -m @ torch.full((d,), 7.0, dtype=torch.float64)  # cancels the global mean
    r = neural_collapse(feats, labels, classifier=(m, bias))
    for value in (
        r.nc1,
        r.nc1_trace_ratio,
        r.nc2_equinorm,
        r.nc2_equiangularity,
        r.nc2_max_angle,
        r.nc3,
        r.nc4,
        r.nc2_w_max_angle,
    ):
        assert value == pytest.approx(0.0, abs=1e-10)
    assert r.classes == tuple(range(c)) and "Papyan" in r.nc1_variant


def _naive(h, y, w, b):
    classes = np.unique(y)
    c = len(classes)
    mu_g = h.mean(0)
    means = np.stack([h[y == k].mean(0) for k in classes])
    m = means - mu_g
    sw = sum(
        np.outer(
            h[i] - means[np.searchsorted(classes, y[i])],
            h[i] - means[np.searchsorted(classes, y[i])],
        )
        for i in range(len(h))
    ) / len(h)
    sb = m.T @ m / c
    st = (h - mu_g).T @ (h - mu_g) / len(h)
    nc1 = np.trace(sw @ np.linalg.pinv(sb)) / c
    norms = np.linalg.norm(m, axis=1)
    cos = (m / norms[:, None]) @ (m / norms[:, None]).T
    off = cos[np.triu_indices(c, 1)]
    wc = w[classes]
    nc3 = np.sum((wc / np.linalg.norm(wc) - m / np.linalg.norm(m)) ** 2)
    pred = np.argmax(h @ w.T + b, axis=1)
    ncc = classes[np.argmin(((h[:, None] - means[None]) ** 2).sum(-1), axis=1)]
    return dict(
        nc1=nc1,
        nc1_trace_ratio=np.trace(sw) / np.trace(st),
        nc2_equinorm=norms.std(ddof=1) / norms.mean(),
        nc2_equiangularity=off.std(ddof=1),
        nc2_max_angle=np.abs(off + 1 / (c - 1)).mean(),
        nc3=nc3,
        nc4=np.mean(pred != ncc),
    )


def test_perturbed_etf_matches_naive():
    c, d = 4, 10
    m = _etf(c, d, seed=1)
    g = torch.Generator().manual_seed(2)
    labels = torch.tensor([0, 1, 3] * 30 + [1, 3])  # class 2 absent, unbalanced
    feats = m[labels] + 0.3 * torch.randn(len(labels), d, generator=g, dtype=torch.float64)
    lin = nn.Linear(d, c).double()
    with torch.no_grad():
        lin.weight.copy_(m + 0.1 * torch.randn(c, d, generator=g, dtype=torch.float64))
    r = neural_collapse(feats, labels, classifier=lin)
    want = _naive(
        feats.numpy(), labels.numpy(), lin.weight.detach().numpy(), lin.bias.detach().numpy()
    )
    for key, value in want.items():
        assert getattr(r, key) == pytest.approx(value, rel=1e-8, abs=1e-12), key
    assert r.nc1 > 0.01 and r.classes == (0, 1, 3)
    # more noise, more within-class variability
    noisier = neural_collapse(
        m[labels] + 0.6 * torch.randn(len(labels), d, generator=g, dtype=torch.float64), labels
    )
    assert noisier.nc1 > r.nc1 and noisier.nc3 is None


def test_classifier_shape_errors():
    feats, labels = torch.randn(20, 5), torch.arange(4).repeat(5)
    with pytest.raises(SplinescopeError, match="classifier"):
        neural_collapse(feats, labels, classifier=torch.randn(4, 6))
    with pytest.raises(SplinescopeError, match="classifier: has 3 rows"):
        neural_collapse(feats, labels, classifier=torch.randn(3, 5))
    with pytest.raises(SplinescopeError, match="labels"):
        neural_collapse(feats, torch.zeros(20, dtype=torch.long))
