"""The paper's probes: LC on Linear outputs vs the published algorithm, LC at decision-boundary
points, and the migration profile — each probe's keys equal to its measure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monitor_helpers import tiny_context
from torch import nn

from published_lc import naive_counts
from splinescope.errors import SplinescopeError
from splinescope.geometry import cross_polytope, ortho_frame
from splinescope.geometry.boundary import decision_boundary_points
from splinescope.geometry.complexity import local_complexity
from splinescope.geometry.plane import regions_in_plane
from splinescope.models import build_model
from splinescope.monitor import ProbeContext, check_probe
from splinescope.monitor.probe import subset
from splinescope.monitor.probes import BoundaryLCProbe, LocalComplexityProbe, MigrationProbe
from splinescope.monitor.probes.migration import plane_anchors
from splinescope.nn.selectors import linear_output_names, resolve_units


def _mlp(dtype=torch.float64) -> nn.Module:
    """A 6-16x3-3 MLP fitted briefly to the blobs, so that it predicts all three classes."""
    torch.manual_seed(3)
    model = build_model("mlp", in_features=6, n_classes=3, width=16, depth=3)
    ctx = tiny_context()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(100):
        loss = nn.functional.cross_entropy(model(ctx.x_train), ctx.y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model.to(dtype)


def _context(dtype=torch.float64) -> ProbeContext:
    ctx = tiny_context()
    return ProbeContext(
        x_train=ctx.x_train.to(dtype),
        y_train=ctx.y_train,
        x_test=ctx.x_test.to(dtype),
        y_test=ctx.y_test,
        x_random=ctx.x_random.to(dtype),
        domain=ctx.domain,
        n_classes=ctx.n_classes,
        loss_fn=ctx.loss_fn,
    )


def test_linear_outputs_are_every_linear_logits_included():
    model = _mlp()
    assert linear_output_names(model) == ["fc1", "fc2", "fc3", "out"]
    assert resolve_units(model, "activations", None) is None
    with pytest.raises(SplinescopeError, match="leave layers unset"):
        resolve_units(model, "linear_outputs", ("fc1",))
    with pytest.raises(SplinescopeError, match="needs nn.Linear"):
        linear_output_names(nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU()))
    with pytest.raises(SplinescopeError, match="units"):
        LocalComplexityProbe(units="linears")


def test_lc_probe_on_linear_outputs_equals_the_published_algorithm():
    """The probe (shared-frame shortcut through the first Linear) against the naive published
    code on the same hull; float64, so the shortcut's rounding cannot flip a sign."""
    model, ctx = _mlp(), _context()
    probe = LocalComplexityProbe(radius=0.3, n_vertices=8, n_points=50, units="linear_outputs")
    result = check_probe(probe, model, ctx)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for split, x in (("train", ctx.x_train), ("test", ctx.x_test), ("random", ctx.x_random)):
        points, _ = subset(x, None, 50, seed=probe.seed + ("train", "test", "random").index(split))
        frame = ortho_frame((6,), 4, seed=probe.seed, dtype=torch.float64)
        expected = naive_counts(model, cross_polytope(points, frame, 0.3), linears)
        assert np.array_equal(result.arrays[f"{split}_counts"], expected.numpy())
        assert result.scalars[f"{split}_total"] == pytest.approx(expected.sum(1).double().mean())
        assert result.scalars[f"{split}/out"] == pytest.approx(expected[:, 3].double().mean())
    # the logit layer is what sets the published count apart from activation inputs
    relu = check_probe(LocalComplexityProbe(radius=0.3, n_vertices=8, n_points=50), model, ctx)
    assert {k for k in relu.scalars if k.startswith("train/")} == {
        "train/act1",
        "train/act2",
        "train/act3",
    }
    assert result.scalars["train_total"] == pytest.approx(
        relu.scalars["train_total"] + result.scalars["train/out"]
    )


def test_boundary_lc_probe_equals_its_measures_and_points_tie():
    model, ctx = _mlp(), _context()
    probe = BoundaryLCProbe(radius=0.2, n_vertices=8, n_points=60, store_counts=True)
    result = check_probe(probe, model, ctx)
    x, _ = subset(ctx.x_train, ctx.y_train, 60, seed=probe.seed)
    found = decision_boundary_points(model, x, tol=probe.tol)
    assert len(found) > 0
    logits = model(found.points).detach()
    top2 = logits.topk(2, dim=1).values
    assert (top2[:, 0] - top2[:, 1]).abs().max() <= probe.tol  # a logit tie
    lc = local_complexity(model, found.points, radius=0.2, n_vertices=8, seed=probe.seed)
    assert result.scalars["n_boundary_points"] == len(found)
    assert result.scalars["n_skipped"] == len(found.skipped)
    assert result.scalars["boundary_total"] == pytest.approx(lc.mean_total)
    assert result.scalars["boundary_distance"] == pytest.approx(float(found.distance.mean()))
    assert np.array_equal(result.arrays["boundary_counts"], lc.counts.numpy())


def test_boundary_lc_probe_without_boundary_points_says_so():
    model = nn.Sequential(nn.Linear(6, 3))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([1.0, 0.0, 0.0]))  # class 0 everywhere
    result = BoundaryLCProbe(n_vertices=8, n_points=20).compute(model, _context(torch.float32))
    assert result.scalars == {"n_boundary_points": 0.0, "n_skipped": 20.0}


def test_plane_anchors_take_three_classes_and_are_fixed():
    labels = torch.tensor([2, 0, 0, 1, 2, 1, 0, 1, 2])
    assert plane_anchors(labels, 2) == [(1, 3, 0), (2, 5, 4)]
    with pytest.raises(SplinescopeError, match="≥ 3 classes"):
        plane_anchors(torch.tensor([0, 1, 0]), 1)
    with pytest.raises(SplinescopeError, match="n_planes"):
        plane_anchors(labels, 4)


def test_migration_probe_equals_the_profile_of_the_same_plane():
    model, ctx = _mlp(), _context()
    probe = MigrationProbe(n_planes=2, resolution=64, bins=8, dpi=20)
    result = check_probe(probe, model, ctx)
    profiles = []
    for _triple, plane in probe.planes(ctx):
        part = regions_in_plane(model, plane.origin, plane.u, plane.v, plane.extent)
        profiles.append(probe.profile(part))
    length = sum(p.boundary_length for p in profiles)
    area = sum(p.area for p in profiles)
    assert np.allclose(result.arrays["boundary_length"], length)
    assert np.allclose(result.arrays["area"], area)
    assert np.allclose(result.arrays["density"], length / area, equal_nan=True)
    assert np.array_equal(result.arrays["bin_edges"], profiles[0].bin_edges)
    share = sum(p.band_length_share * p.total_length for p in profiles) / sum(
        p.total_length for p in profiles
    )
    assert result.scalars["band_length_share"] == pytest.approx(share)
    assert result.scalars["n_regions"] == sum(p.n_regions for p in profiles)
    assert result.scalars["n_decision_segments"] == sum(p.n_decision_segments for p in profiles)
    assert result.arrays["plane_png"][:4].tobytes() == b"\x89PNG"
    # one plane: the scalars are the measure's own
    single = MigrationProbe(resolution=64, bins=8, picture=False).compute(model, ctx)
    assert single.scalars["band_enrichment"] == pytest.approx(profiles[0].band_enrichment)
    assert single.scalars["mean_density"] == pytest.approx(profiles[0].mean_density)


def test_migration_probe_skips_planes_without_a_decision_boundary():
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[2].weight.zero_()
        model[2].bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    result = MigrationProbe(resolution=32, picture=False).compute(model, _context(torch.float32))
    assert result.scalars["n_planes_skipped"] == 1.0 and "band_length_share" not in result.scalars
    assert result.arrays == {}
