"""Local affine maps against autograd Jacobians and the forward pass; supported graph forms."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.exact import local_affine_map, point_codes
from splinescope.nn import describe, record_states


def jacobian(model, x):
    double = copy.deepcopy(model).double().eval()
    return torch.autograd.functional.jacobian(
        lambda y: double(y[None]).reshape(-1), x.double()
    ).reshape(-1, x.numel())


class Functional(nn.Module):
    """Functional activations, views, sizes, scalar arithmetic and a concatenation."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(8, 8, bias=False)
        self.w = nn.Parameter(torch.randn(3, 16) * 0.3)
        self.prelu = nn.Parameter(torch.tensor([0.2]))

    def forward(self, x):
        h = F.relu(self.a(x))
        g = torch.relu(self.b(h) - 0.1)
        k = F.leaky_relu(h * 2.0, negative_slope=0.05)
        k = F.prelu(k / 3.0, self.prelu)
        z = torch.cat((g, k + g), dim=1).view(x.size(0), -1)
        z = F.hardtanh(z, -0.5, 0.5) + F.relu6(z)
        return F.linear(z, self.w)


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.down = nn.Conv2d(4, 4, 2, stride=2, bias=False)
        self.pool = nn.AdaptiveMaxPool2d(2)
        self.avg = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(32, 5))

    def forward(self, x):
        h = self.bn(self.conv(x)).relu()
        h = h + F.max_pool2d(h, 3, stride=1, padding=1)
        d = self.down(h)
        return self.fc(torch.cat([self.pool(d), self.avg(torch.relu(d))], 1))


@pytest.mark.parametrize("make, shape", [(Functional, (6,)), (Conv, (2, 6, 6))])
def test_local_map_equals_jacobian_and_model(make, shape):
    torch.manual_seed(0)
    model = make()
    if isinstance(model, Conv):
        model.train()(torch.randn(16, *shape))  # non-trivial running statistics
        model.eval()
    x = torch.randn(shape)
    local = local_affine_map(model, x)
    A, b = local
    torch.testing.assert_close(A, jacobian(model, x), rtol=1e-10, atol=1e-12)
    double = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        torch.testing.assert_close(local(x[None]), double(x.double()[None]), rtol=0, atol=1e-10)
        # Points in the same region (same full state pattern) follow the same map.
        y = x.double()[None] + 1e-7 * torch.randn(20, *shape, dtype=torch.float64)
        same = _same_pattern(double, x.double()[None], y)
        assert same.any()
        torch.testing.assert_close(local(y[same]), double(y[same]), rtol=0, atol=1e-10)
    assert local.rows().shape == (A.shape[0], *shape)
    assert not local.on_boundary


def _same_pattern(model, x, y):
    ref = record_states(model, x)
    other = record_states(model, y)
    same = torch.ones(len(y), dtype=torch.bool)
    for name in ref:
        same &= (other[name] == ref[name]).all(dim=1)
    return same


def test_model_left_untouched_and_train_mode_kept():
    torch.manual_seed(1)
    model = Conv().train()
    before = copy.deepcopy(model.state_dict())
    local_affine_map(model, torch.randn(2, 6, 6))
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]) and value.dtype == before[key].dtype


def test_point_on_boundary_is_flagged():
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
        layer.bias.zero_()
    local = local_affine_map(nn.Sequential(layer, nn.ReLU()), torch.tensor([0.0, 1.0]))
    assert local.on_boundary


def test_point_codes_match_record_states():
    torch.manual_seed(2)
    model = Functional()
    x = torch.randn(200, 6)
    bits, records = point_codes(model, x)
    double = copy.deepcopy(model).double()
    units = describe(double, x[:1].double())
    states = record_states(double, x.double())
    expected = np.concatenate([(states[u.name].numpy() > 0) for u in units.layers], 1)
    assert [r.name for r in records] == units.names
    np.testing.assert_array_equal(bits, expected)


def test_bad_input_names_the_problem():
    with pytest.raises(SplinescopeError, match="GELU"):
        local_affine_map(nn.Sequential(nn.Linear(2, 2), nn.GELU()), torch.zeros(2))
    with pytest.raises(SplinescopeError, match="does not fit"):
        local_affine_map(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), torch.zeros(3))

    class Product(nn.Module):
        def forward(self, x):
            return torch.relu(x) * x

    with pytest.raises(SplinescopeError, match="multiplies two input-dependent"):
        local_affine_map(Product(), torch.zeros(2))

    class Branchy(nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(SplinescopeError, match="torch.fx"):
        local_affine_map(Branchy(), torch.zeros(2))
    with pytest.raises(SplinescopeError, match="model"):
        local_affine_map("not a model", torch.zeros(2))


class WithConstants(nn.Module):
    """Concatenates a constant made at the batch's size and adds a per-feature offset."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        h = torch.relu(self.fc(x) + torch.ones(4) * 0.1)
        h = torch.cat([h, torch.full((x.shape[0], 2), 0.5)], dim=1)
        return self.head(1.0 - h)


def test_constants_in_the_graph():
    torch.manual_seed(3)
    model = WithConstants()
    x = torch.randn(3)
    A, b = local_affine_map(model, x)
    torch.testing.assert_close(A, jacobian(model, x), rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        expected = copy.deepcopy(model).double()(x.double()[None])[0]
    torch.testing.assert_close(A @ x.double() + b, expected, rtol=0, atol=1e-12)
