"""Codes, Hessian and partition probes: conformance, and values equal to their measures."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from splinescope.geometry.codes import code_metrics
from splinescope.landscape import hessian_eigenvalues
from splinescope.monitor.probe import ProbeContext, check_probe
from splinescope.monitor.probes.codes import CodesProbe
from splinescope.monitor.probes.hessian import HessianProbe
from splinescope.monitor.probes.partition import PartitionProbe


@pytest.fixture
def setup():
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 3)
    )
    x = torch.rand(60, 2, generator=gen) * 2 - 1
    y = torch.randint(0, 3, (60,), generator=gen)
    ctx = ProbeContext(
        x_train=x[:40],
        y_train=y[:40],
        x_test=x[40:],
        y_test=y[40:],
        domain=(-1.0, 1.0),
        n_classes=3,
        loss_fn=nn.functional.cross_entropy,
        step=7,
    )
    return model, ctx


def test_codes_probe_equals_code_metrics(setup):
    model, ctx = setup
    result = check_probe(CodesProbe(n_points=30), model, ctx)
    expected = code_metrics(
        model, ctx.x_train[:30], ctx.y_train[:30], ctx.x_test[:30], ctx.y_test[:30]
    )
    assert result.scalars == pytest.approx(expected)
    assert 0.0 <= result.scalars["redundancy_ratio"] < 1.0


def test_hessian_probe_top_eigenvalues_match_lanczos(setup):
    model, ctx = setup
    result = check_probe(HessianProbe(k=3, n_points=40, tol=1e-6), model, ctx)
    exact = hessian_eigenvalues(model, ctx.loss_fn, (ctx.x_train, ctx.y_train), k=3, tol=1e-8)
    top = [result.scalars[f"top_{i}"] for i in (1, 2, 3)]
    assert np.allclose(top, np.sort(np.asarray(exact.eigenvalues))[::-1][:3], rtol=1e-4, atol=1e-8)
    assert {"trace", "trace_se", "n_outliers"} <= set(result.scalars)
    assert result.arrays["density"].shape == result.arrays["density_grid"].shape


def test_partition_probe_stores_a_png_and_the_region_count(setup):
    model, ctx = setup
    result = check_probe(PartitionProbe(), model, ctx)
    png = result.arrays["plane_png"].tobytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(io.BytesIO(png)).shape[0] > 100
    assert result.scalars["n_regions"] >= 2
