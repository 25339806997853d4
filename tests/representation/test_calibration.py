"""Calibration error against a direct per-bin computation, and the confidence-1.0 case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splinescope.representation import calibration_error


def _direct(conf, correct, edges, norm):
    """Loop over bins: [e_b, e_b+1), the last one closed."""
    gaps, weights = [], []
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        inside = (conf >= lo) & ((conf < hi) if b < len(edges) - 2 else (conf <= hi))
        if inside.sum() == 0:
            continue
        gaps.append(abs(correct[inside].mean() - conf[inside].mean()))
        weights.append(inside.mean())
    gaps, weights = np.array(gaps), np.array(weights)
    if norm == "l1":
        return float((weights * gaps).sum())
    if norm == "l2":
        return float(np.sqrt((weights * gaps**2).sum()))
    return float(gaps.max())


def _data(n=2000, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(n, c, generator=g, dtype=torch.float64)
    probs = torch.softmax(logits, dim=1)
    labels = torch.multinomial(torch.softmax(0.7 * logits, dim=1), 1, generator=g).squeeze(1)
    return probs, labels


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("binning", ["width", "mass"])
def test_matches_direct_per_bin(norm, binning):
    probs, labels = _data()
    r = calibration_error(probs, labels, n_bins=10, norm=norm, binning=binning)
    conf, pred = probs.max(1)
    correct = (pred == labels).double().numpy()
    assert r.error == pytest.approx(
        _direct(conf.numpy(), correct, r.edges.numpy(), norm), rel=1e-12
    )
    assert int(r.counts.sum()) == 2000 and len(r.edges) == 11
    if binning == "mass":
        assert r.counts.max() - r.counts.min() <= 1
    else:
        np.testing.assert_allclose(r.edges.numpy(), np.linspace(0, 1, 11))


def test_confidence_exactly_one_is_in_the_last_bin():
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.55, 0.45], [0.5, 0.5]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1])
    r = calibration_error(probs, labels, n_bins=10)
    assert r.counts.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert r.confidence[-1] == 1.0 and r.accuracy[-1] == 0.5
    # bins: [0.5, 0.6) holds 0.55 (correct) and 0.5 (wrong, first class wins the tie)
    assert r.error == pytest.approx(0.5 * abs(0.5 - 0.525) + 0.5 * 0.5)


def test_nll_and_brier():
    probs, labels = _data(n=300, c=3, seed=1)
    r = calibration_error(probs, labels)
    p, y = probs.numpy(), labels.numpy()
    assert r.nll == pytest.approx(-np.mean(np.log(p[np.arange(300), y])))
    assert r.brier == pytest.approx(np.mean(((p - np.eye(3)[y]) ** 2).sum(1)))
    assert "equal-width" in r.variant and "ECE" in r.variant


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_confidences_on_edges_follow_the_stated_rule(dtype):
    conf = torch.tensor([0.5, 0.75, 0.3, 0.7, 0.6, 0.9], dtype=dtype)
    probs = torch.stack([conf, 1 - conf], dim=1)
    labels = torch.zeros(6, dtype=torch.long)
    for n_bins in (4, 10, 20):
        r = calibration_error(probs, labels, n_bins=n_bins)
        c64 = probs.max(dim=1).values.double()
        edges = r.edges
        want = [min(int((c >= edges[1:-1]).sum()), n_bins - 1) for c in c64]
        got = torch.zeros(n_bins, dtype=torch.long).index_add_(
            0, torch.tensor(want), torch.ones(6, dtype=torch.long)
        )
        assert r.counts.tolist() == got.tolist(), n_bins
