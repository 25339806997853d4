"""The blocked pass of calibration_error agrees with a row-by-row computation: ties settled by
the first maximum in every block, confidences on bin edges, Brier and NLL in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splinescope.representation import calibration, calibration_error


def _naive(p: np.ndarray, y: np.ndarray, n_bins: int):
    """Row by row in float64: first argmax, bins [e_b, e_b+1) with the last closed."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts, conf_sum, acc_sum = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for row, label in zip(p, y, strict=True):
        conf = float(row.max())
        b = n_bins - 1 if conf >= edges[-2] else int(np.searchsorted(edges, conf, side="right") - 1)
        counts[b] += 1
        conf_sum[b] += conf
        acc_sum[b] += float(int(np.argmax(row)) == label)
    safe = np.maximum(counts, 1)
    ece = float((counts / len(y) * np.abs(acc_sum / safe - conf_sum / safe)).sum())
    onehot = np.eye(p.shape[1])[y]
    brier = float(((p.astype(np.float64) - onehot) ** 2).sum(1).mean())
    nll = float(-np.log(p[np.arange(len(y)), y].astype(np.float64)).mean())
    return ece, counts, brier, nll, float(acc_sum.sum() / len(y))


@pytest.mark.parametrize("block", [7, 64, 1 << 19])
def test_blocked_pass_matches_row_by_row(monkeypatch, block):
    monkeypatch.setattr(calibration, "BLOCK_ELEMENTS", block)
    g = torch.Generator().manual_seed(3)
    n, c, n_bins = 500, 4, 10
    p = torch.softmax(2 * torch.randn(n, c, generator=g), dim=1)
    # exact ties at the maximum, the label on the later of the tied classes (a miss) or the
    # earlier (a hit), and confidences exactly on edges
    p[:40] = torch.tensor([0.4, 0.4, 0.1, 0.1])
    p[40:60] = torch.tensor([0.25, 0.25, 0.25, 0.25])
    p[60:80] = torch.tensor([0.7, 0.1, 0.1, 0.1])
    p[80:90] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    y = torch.randint(0, c, (n,), generator=g)
    y[:20], y[20:40], y[40:50], y[80:90] = 1, 0, 3, 0
    got = calibration_error(p, y, n_bins=n_bins)
    ece, counts, brier, nll, acc = _naive(p.numpy(), y.numpy(), n_bins)
    np.testing.assert_array_equal(got.counts.numpy(), counts)
    assert got.error == pytest.approx(ece, rel=1e-9, abs=1e-12)
    assert got.brier == pytest.approx(brier, rel=1e-6)
    assert got.nll == pytest.approx(nll, rel=1e-9)
    assert got.accuracy_overall == pytest.approx(acc, abs=0)
