"""Decision-boundary points against closed forms, brute force and the model itself."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from models_for_tests import mlp
from torch import nn

from splinescope import local_complexity
from splinescope.errors import SplinescopeError
from splinescope.geometry import BoundaryPoints, decision_boundary_points


def _gap(model: nn.Module, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x)
    own = logits.gather(1, cls[:, None])[:, 0]
    return own - logits.scatter(1, cls[:, None], float("-inf")).max(dim=1).values


def test_linear_model_boundary_is_the_closed_form_first_exit():
    torch.manual_seed(0)
    model = nn.Linear(6, 5).double()
    x = torch.randn(40, 6, dtype=torch.float64)
    tol = 1e-6
    result = decision_boundary_points(model, x, tol=tol)
    assert len(result) + len(result.skipped) == 40 and len(result) > 30
    w, b = model.weight.detach(), model.bias.detach()
    for i in range(len(result)):
        a = int(result.class_from[i])
        x0, x1 = x[result.source[i]], x[result.partner[i]]
        g0 = (w[a] - w) @ x0 + (b[a] - b)  # [C] gaps f_a − f_k at t = 0
        g1 = (w[a] - w) @ x1 + (b[a] - b)
        falling = g1 < g0
        falling[a] = False
        ts = g0[falling] / (g0[falling] - g1[falling])
        t_star, k = ts.min(), torch.nonzero(falling).flatten()[ts.argmin()]
        slope = float(g0[k] - g1[k])  # |d gap / dt| at the exit
        assert abs(float(result.t[i]) - float(t_star)) <= tol / slope * (1 + 1e-9) + 1e-12
        assert int(result.class_across[i]) == int(k)
        expected = x0 + t_star * (x1 - x0)
        assert torch.allclose(
            result.points[i], expected, atol=tol / slope * float((x1 - x0).norm())
        )
    assert result.converged.all() and (result.gap.abs() <= tol).all()


def test_mlp_boundary_points_tie_lie_on_segments_and_use_the_nearest_partner():
    torch.manual_seed(1)
    model = mlp(d_in=8, width=16, depth=3, n_out=4).double()
    x = 5 * torch.randn(60, 8, dtype=torch.float64)  # spread enough to meet two classes
    tol = 1e-5
    result = decision_boundary_points(model, x, tol=tol, batch_size=7)
    assert len(result) + len(result.skipped) == 60 and len(result) >= 40
    assert isinstance(result, BoundaryPoints) and result.toward == "nearest"
    assert result.converged.all() and (result.gap.abs() <= tol).all()
    # the reported gaps are the model's own at the reported points
    assert torch.allclose(_gap(model, result.points, result.class_from), result.gap, atol=1e-12)
    pred = model(x).argmax(dim=1)
    assert torch.equal(result.class_from, pred[result.source])
    assert torch.equal(result.class_to, pred[result.partner])
    assert (result.class_to != result.class_from).all()
    for i, (s, p) in enumerate(zip(result.source.tolist(), result.partner.tolist())):
        others = [j for j in range(60) if pred[j] != pred[s]]
        dist = [float((x[j] - x[s]).norm()) for j in others]
        assert float((x[p] - x[s]).norm()) == pytest.approx(min(dist), rel=1e-12)
        on_line = x[s] + result.t[i] * (x[p] - x[s])
        assert torch.allclose(result.points[i], on_line, atol=1e-12)
    assert 0 < float(result.t.min()) and float(result.t.max()) < 1
    assert torch.allclose(result.distance, (result.points - x[result.source]).norm(dim=1))
    assert (result.steps >= 1).all() and (result.steps <= result.max_iter).all()


def _return_trip_model() -> nn.Sequential:
    """1-D input; class 1 wins on (0.25, 0.45) and (0.85, inf), class 0 elsewhere on [0, 1]."""
    model = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    with torch.no_grad():
        f64 = {"dtype": torch.float64}
        model[0].weight.copy_(torch.tensor([[1.0], [-1.0], [1.0]], **f64))
        model[0].bias.copy_(torch.tensor([-0.35, 0.35, -0.55], **f64))
        model[2].weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [-1.0, -1.0, 4.0 / 3.0]], **f64))
        model[2].bias.copy_(torch.tensor([0.0, 0.1], **f64))
    return model


def test_scan_finds_the_first_crossing_and_bisection_alone_finds_a_bracketed_one():
    model = _return_trip_model()
    x, end = torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    plain = decision_boundary_points(model, x, toward=end, tol=1e-9)
    scanned = decision_boundary_points(model, x, toward=end, tol=1e-9, n_scan=10)
    assert float(plain.t[0]) == pytest.approx(0.85, abs=1e-8)
    assert float(scanned.t[0]) == pytest.approx(0.25, abs=1e-8)
    assert plain.toward == scanned.toward == "targets" and scanned.n_scan == 10


def test_sources_without_a_partner_are_listed_with_their_reason():
    model = _return_trip_model()
    x = torch.tensor([[0.0], [0.1], [0.3]], dtype=torch.float64)  # classes 0, 0, 1
    targets = torch.tensor([[1.0], [0.7], [0.0]], dtype=torch.float64)  # classes 1, 0, 0
    result = decision_boundary_points(model, x, toward=targets)
    assert result.source.tolist() == [0, 2] and result.partner.tolist() == [0, 2]
    assert result.skipped == ((1, "its end point is predicted as the same class (0)"),)
    same = decision_boundary_points(model, x[:2])
    assert len(same) == 0 and same.points.shape == (0, 1)
    assert [i for i, _ in same.skipped] == [0, 1]
    assert "no point of the pool is predicted as a class other than 0" in same.skipped[0][1]
    pooled = decision_boundary_points(model, x[:2], pool=x[2:])
    assert len(pooled) == 2 and pooled.partner.tolist() == [0, 0]


def test_measuring_leaves_the_model_and_rngs_alone():
    torch.manual_seed(2)
    model = mlp(d_in=5, width=8, depth=2, n_out=3)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(30, 5)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    expected = (torch.rand(2), np.random.rand(2), random.random())
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    result = decision_boundary_points(model, x, n_scan=4)
    got = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    assert not result.points.requires_grad and result.points.dtype == torch.float32
    assert (result.gap.abs() <= result.tol).all()  # float32 reaches 1e-4 on this net


def test_local_complexity_at_boundary_points_counts_the_units_that_make_the_boundary():
    # logits (relu(x_0), relu(-x_0)): the decision boundary x_0 = 0 is both units' hyperplane
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.eye(2))
        model[2].bias.zero_()
    x = torch.tensor([[1.0, 0.3], [-1.0, -0.2], [0.8, -0.5], [-0.9, 0.6]])
    result = decision_boundary_points(model, x)
    assert len(result) == 4 and result.points[:, 0].abs().max() <= 1e-4
    at_boundary = local_complexity(model, result.points, radius=0.1, n_vertices=4)
    at_data = local_complexity(model, x, radius=0.1, n_vertices=4)
    assert at_boundary.counts[:, 0].tolist() == [2, 2, 2, 2]
    assert at_data.counts[:, 0].tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"toward": "far"}, "toward: must be 'nearest' or a tensor"),
        ({"toward": torch.zeros(3, 4)}, "toward: expected one end point per source"),
        ({"pool": torch.zeros(3, 5)}, "pool: input shape (5,) differs"),
        ({"toward": torch.zeros(4, 4), "pool": torch.zeros(2, 4)}, "pool: only used with"),
        ({"tol": 0.0}, "tol: must be a number > 0"),
        ({"max_iter": 0}, "max_iter: must be a positive integer"),
        ({"n_scan": 1.5}, "n_scan: must be a positive integer"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    model = mlp(d_in=4, width=4, depth=1, n_out=3)
    with pytest.raises(SplinescopeError) as info:
        decision_boundary_points(model, torch.randn(4, 4), **kwargs)
    assert message in str(info.value)


def test_bad_points_and_single_output_models_are_named():
    with pytest.raises(SplinescopeError, match="x: expected a non-empty batch"):
        decision_boundary_points(mlp(d_in=4, n_out=3), torch.randn(4))
    with pytest.raises(SplinescopeError, match="x: expected finite"):
        decision_boundary_points(mlp(d_in=4, n_out=3), torch.full((2, 4), float("nan")))
    with pytest.raises(SplinescopeError, match="model: needs at least 2 outputs"):
        decision_boundary_points(mlp(d_in=4, n_out=1), torch.randn(3, 4))
