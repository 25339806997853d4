"""Local complexity against the published algorithm, closed forms and its own invariants."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from models_for_tests import ConvBNPool, ResidualMLP, mlp
from torch import nn

from published_lc import naive_counts
from splinescope import SplinescopeError, local_complexity
from splinescope.geometry import cross_polytope, ortho_frame


def _hull(points: torch.Tensor, n_vertices: int, radius: float, seed: int = 0) -> torch.Tensor:
    frame = ortho_frame(tuple(points.shape[1:]), n_vertices // 2, seed=seed, dtype=points.dtype)
    return cross_polytope(points, frame, radius)


def test_mlp_matches_published_algorithm_on_the_same_hull():
    model = mlp()
    points = torch.randn(37, 20)
    hull = _hull(points, 10, 0.5)
    ours = local_complexity(model, points, radius=0.5, hull=hull, batch_size=8)
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    assert torch.equal(ours.counts, naive_counts(model, hull, linears))


def test_published_setup_linear_outputs_including_logits():
    model = mlp()
    points = torch.randn(21, 20)
    hull = _hull(points, 16, 0.3)
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    ours = local_complexity(model, points, radius=0.3, hull=hull, layers=names)
    assert list(ours.layer_names) == names
    assert set(ours.layer_kinds) == {"output"}
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert torch.equal(ours.counts, naive_counts(model, hull, linears))


def test_cnn_with_batchnorm_and_maxpool_matches_on_bn_outputs():
    model = ConvBNPool()
    points = torch.rand(9, 3, 8, 8)
    hull = _hull(points, 12, 0.05)
    ours = local_complexity(model, points, radius=0.05, hull=hull, layers=["act*"])
    assert list(ours.layer_names) == ["act1", "act2"]
    reference = naive_counts(model, hull, [model.bn1, model.bn2])
    assert torch.equal(ours.counts, reference)
    assert reference.sum() > 0


def test_maxpool_units_count_argmax_changes():
    model = ConvBNPool()
    points = torch.rand(6, 3, 8, 8)
    hull = _hull(points, 8, 0.2)
    ours = local_complexity(model, points, radius=0.2, hull=hull, layers=["pool"])
    assert ours.layer_kinds == ("argmax",)
    with torch.no_grad():
        model.eval()
        pre = model.act1(model.bn1(model.conv1(hull.flatten(0, 1))))
        _, idx = nn.functional.max_pool2d(pre, 2, return_indices=True)
    idx = idx.reshape(6, 8, -1)
    expected = (idx != idx[:, :1]).any(dim=1).sum(dim=1)
    assert torch.equal(ours.counts[:, 0], expected)


def test_residual_mlp_matches_on_relu_inputs():
    model = ResidualMLP()
    points = torch.randn(15, 12)
    hull = _hull(points, 10, 0.4)
    ours = local_complexity(model, points, radius=0.4, hull=hull)
    reference = naive_counts(model, hull, list(model.acts), use_input=True)
    assert ours.layer_names == ("acts.0", "acts.1", "acts.2")
    assert torch.equal(ours.counts, reference)


def test_gelu_mlp_uses_sign_and_is_flagged_smooth():
    model = mlp(act=nn.GELU)
    points = torch.randn(11, 20)
    hull = _hull(points, 10, 0.5)
    ours = local_complexity(model, points, radius=0.5, hull=hull)
    assert set(ours.layer_kinds) == {"smooth"}
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    assert torch.equal(ours.counts, naive_counts(model, hull, linears))


def test_shared_frame_fast_path_agrees_with_materialised_hull_in_float64():
    model = mlp().double()
    points = torch.randn(50, 20, dtype=torch.float64)
    fast = local_complexity(model, points, radius=0.7, n_vertices=12, seed=3)
    slow = local_complexity(model, points, radius=0.7, hull=_hull(points, 12, 0.7, seed=3))
    assert torch.equal(fast.counts, slow.counts)


@settings(max_examples=40, deadline=None)
@given(
    dim=st.integers(2, 12),
    width=st.integers(1, 10),
    half=st.integers(1, 6),
    radius=st.floats(1e-3, 3.0),
    seed=st.integers(0, 10_000),
)
def test_first_layer_closed_form(dim, width, half, radius, seed):
    """An affine unit w·x+b cuts the hull of {x ± r·u_k} iff |w·x+b| < r·max_k |w·u_k|."""
    half = min(half, dim)
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(dim, width).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(width, dim, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.randn(width, generator=gen, dtype=torch.float64))
    model = nn.Sequential(layer, nn.ReLU())
    points = torch.randn(7, dim, generator=gen, dtype=torch.float64)
    result = local_complexity(model, points, radius=radius, n_vertices=2 * half, seed=seed)
    frame = ortho_frame((dim,), half, seed=seed, dtype=torch.float64)
    with torch.no_grad():
        value = layer(points).abs()  # [N, W]
        reach = radius * (frame @ layer.weight.T).abs().max(dim=0).values  # [W]
    margin = (value - reach).abs() / (1 + value)
    if (margin < 1e-9).any():  # too close to call in floating point
        return
    assert torch.equal(result.counts[:, 0], (value < reach).sum(dim=1))


def test_lc_vanishes_as_radius_shrinks():
    model = mlp()
    points = torch.randn(40, 20)
    big = local_complexity(model, points, radius=1.0, n_vertices=10)
    tiny = local_complexity(model, points, radius=1e-6, n_vertices=10)
    assert big.mean_total > 1
    assert tiny.counts.sum() == 0


def test_seed_determinism_and_seed_matters():
    model = mlp()
    points = torch.randn(30, 20)
    a = local_complexity(model, points, radius=0.5, n_vertices=10, seed=1)
    b = local_complexity(model, points, radius=0.5, n_vertices=10, seed=1)
    c = local_complexity(model, points, radius=0.5, n_vertices=10, seed=2)
    assert torch.equal(a.counts, b.counts)
    assert not torch.equal(a.counts, c.counts)


def test_frame_does_not_collide_with_model_initialised_from_same_seed():
    torch.manual_seed(0)
    layer = nn.Linear(20, 5)
    frame = ortho_frame((20,), 5, seed=0)
    rows = layer.weight / layer.weight.norm(dim=1, keepdim=True)
    assert (rows @ frame.T).abs().max() < 0.99


@pytest.mark.parametrize("neighborhood", ["ortho", "ball"])
@pytest.mark.parametrize("batch_size", [1, 3, 7, 64])
def test_batch_size_does_not_change_results_and_last_partial_batch_counts(neighborhood, batch_size):
    model = mlp().double()
    points = torch.randn(10, 20, dtype=torch.float64)
    reference = local_complexity(
        model, points, radius=0.8, n_vertices=10, neighborhood=neighborhood, batch_size=10
    )
    result = local_complexity(
        model, points, radius=0.8, n_vertices=10, neighborhood=neighborhood, batch_size=batch_size
    )
    assert torch.equal(result.counts, reference.counts)
    assert (result.total > 0).all()  # the last partial batch is measured, not left at 0


def test_cnn_fast_path_and_hull_path_agree_with_batching():
    model = ConvBNPool().double()
    points = torch.rand(5, 3, 8, 8, dtype=torch.float64)
    fast = local_complexity(model, points, radius=0.05, n_vertices=8, batch_size=2)
    slow = local_complexity(model, points, radius=0.05, hull=_hull(points, 8, 0.05))
    assert torch.equal(fast.counts, slow.counts)


def test_channels_last_layout_gives_the_same_counts():
    model = ConvBNPool().double()
    points = torch.rand(6, 3, 8, 8, dtype=torch.float64)
    nhwc = local_complexity(model, points, radius=0.05, n_vertices=8, channels_last=True)
    nchw = local_complexity(model, points, radius=0.05, n_vertices=8, channels_last=False)
    assert torch.equal(nhwc.counts, nchw.counts)
    with pytest.raises(SplinescopeError, match="channels_last"):
        local_complexity(mlp(), torch.randn(3, 20), radius=0.5, n_vertices=4, channels_last=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    model = mlp()
    points = torch.randn(12, 20)
    result = local_complexity(model, points, radius=0.5, n_vertices=20, dtype=dtype)
    assert result.dtype == str(dtype).replace("torch.", "")
    assert next(model.parameters()).dtype == torch.float32  # the user's model is not converted
    hull = _hull(points.to(dtype), 20, 0.5)
    linears = [m for m in model.to(dtype) if isinstance(m, nn.Linear)][:-1]
    reference = naive_counts(model, hull, linears)
    assert (result.counts != reference).sum() <= 2  # rounding of the shared-frame path only


def test_include_center_adds_a_vertex():
    model = mlp()
    points = torch.randn(8, 20)
    hull = _hull(points, 6, 0.5)
    with_center = local_complexity(model, points, radius=0.5, hull=hull, include_center=True)
    full = torch.cat([hull, points.unsqueeze(1)], dim=1)
    assert with_center.n_vertices == 7
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    assert torch.equal(with_center.counts, naive_counts(model, full, linears))


def test_result_summaries_and_frame():
    model = mlp()
    result = local_complexity(model, torch.randn(25, 20), radius=0.5, n_vertices=10)
    frame = result.to_frame()
    assert list(frame.columns) == [*result.layer_names, "total"]
    assert np.allclose(frame["total"].mean(), result.mean_total)
    summary = result.summary()
    assert summary["layer"].tolist() == [*result.layer_names, "total"]
    total = result.total.double()
    assert summary.iloc[-1]["sem"] == pytest.approx(float(total.std() / 5.0))
    assert np.allclose(result.fractions.numpy(), result.counts.numpy() / 32)
    assert result.units_per_layer == (32, 32, 32)


def _state(model):
    return {
        "modes": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "params": [p.detach().clone() for p in model.parameters()],
        "buffers": [b.clone() for b in model.buffers()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
    }


def _rng():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def test_measuring_changes_nothing_item_by_item():
    model = ConvBNPool()
    model.train()
    model.conv2.weight.requires_grad_(False)
    model(torch.rand(4, 3, 8, 8)).sum().backward()
    points = torch.rand(6, 3, 8, 8)
    before, rng_before = _state(model), _rng()
    local_complexity(model, points, radius=0.1, n_vertices=10)
    local_complexity(model, points, radius=0.1, n_vertices=10, neighborhood="ball")
    after, rng_after = _state(model), _rng()
    assert before["modes"] == after["modes"] and all(after["modes"])
    assert before["requires_grad"] == after["requires_grad"]
    assert all(torch.equal(a, b) for a, b in zip(before["params"], after["params"]))
    assert all(torch.equal(a, b) for a, b in zip(before["buffers"], after["buffers"]))
    assert all(
        (a is None and b is None) or torch.equal(a, b)
        for a, b in zip(before["grads"], after["grads"])
    )
    assert before["hooks"] == after["hooks"]
    assert torch.equal(rng_before[0], rng_after[0])
    assert np.array_equal(rng_before[1], rng_after[1])
    assert rng_before[2] == rng_after[2]


class _Untraceable(nn.Module):
    """Data-dependent control flow defeats torch.fx, so hooks are used; can raise on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.act = nn.ReLU()
        self.out = nn.Linear(6, 2)
        self.explode = False

    def forward(self, x):
        if x.sum() > 1e9 or self.explode:
            raise RuntimeError("boom")
        return self.out(self.act(self.fc(x)))


def test_hooks_removed_even_on_error():
    model = _Untraceable()
    points = torch.randn(5, 4)
    local_complexity(model, points, radius=0.3, n_vertices=4)  # works through hooks
    model.explode = True
    with pytest.raises(SplinescopeError, match="boom"):
        local_complexity(model, points, radius=0.3, n_vertices=4)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert model.training


def test_untraceable_model_matches_reference_through_hooks():
    model = _Untraceable()
    points = torch.randn(9, 4)
    hull = _hull(points, 4, 0.5)
    ours = local_complexity(model, points, radius=0.5, hull=hull)
    assert torch.equal(ours.counts, naive_counts(model, hull, [model.fc]))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"points": torch.full((3, 20), float("nan"))}, "points"),
        ({"points": torch.tensor([[float("inf")] * 20])}, "points"),
        ({"points": torch.empty(0, 20)}, "points"),
        ({"points": torch.randn(3, 7)}, "points"),
        ({"radius": 0.0}, "radius"),
        ({"radius": -1.0}, "radius"),
        ({"n_vertices": 5}, "n_vertices"),
        ({"n_vertices": 42}, "n_vertices"),  # 21 directions > 20 dimensions
        ({"neighborhood": "cube"}, "neighborhood"),
        ({"hull": torch.randn(3, 4, 19)}, "hull"),
        ({"hull": torch.randn(2, 4, 20)}, "hull"),
        ({"layers": ["nope*"]}, "layers"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_input_names_the_argument(kwargs, field):
    model = mlp()
    args = {"points": torch.randn(3, 20), "radius": 0.5, "n_vertices": 10, **kwargs}
    points = args.pop("points")
    with pytest.raises(SplinescopeError, match=field):
        local_complexity(model, points, **args)


def test_unknown_layer_lists_valid_names():
    with pytest.raises(SplinescopeError, match=r"\['1', '3', '5'\]"):
        local_complexity(mlp(), torch.randn(3, 20), radius=0.5, n_vertices=10, layers="relu9")


class _InputDependent(nn.Module):
    """Untraceable: ``act2`` runs only for batches whose sum is positive."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act, self.fc2, self.act2 = (
            nn.Linear(3, 3),
            nn.ReLU(),
            nn.Linear(3, 3),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(x))
        if x.sum() > 0:
            h = self.act2(self.fc2(h))
        return h


def test_a_layer_not_reached_for_some_points_is_an_error_not_a_zero_count():
    points = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    with pytest.raises(SplinescopeError, match="act2"):
        local_complexity(_InputDependent(), points, radius=0.01, n_vertices=2, batch_size=1)


# --- the shared-frame path: first layer from the centres, deeper layers from shared products --


def _vertex_path_on_shared_products(model, points, radius, n_vertices, seed):
    """Reference for an MLP ``Sequential``: the vertex values ``fl(c ± f_k)`` of its first
    Linear built explicitly, every layer then run out of place and counted on all vertices."""
    from splinescope.nn import count_cut_units, describe

    units = describe(model, points[:1])
    first, rest = model[0], list(model)[1:]
    frame = ortho_frame(tuple(points.shape[1:]), n_vertices // 2, seed=seed, dtype=points.dtype)
    with torch.no_grad():
        center = first(points)
        reach = radius * nn.functional.linear(frame, first.weight)
        value = torch.cat([center[:, None] + reach[None], center[:, None] - reach[None]], 1)
        value = value.flatten(0, 1)
        counts, index = [], 0
        for module in rest:
            if isinstance(module, nn.ReLU):
                layer = units.layers[index]
                counts.append(count_cut_units(layer, value, n_vertices))
                index += 1
            value = module(value)
    return torch.stack(counts, dim=1)


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(2, 30),
    width=st.integers(1, 24),
    half=st.integers(1, 8),
    radius=st.floats(1e-3, 4.0),
    seed=st.integers(0, 10_000),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_shared_frame_path_is_bit_identical_to_counting_its_vertices(
    dim, width, half, radius, seed, dtype
):
    half = min(half, dim)
    torch.manual_seed(seed)
    model = mlp(d_in=dim, width=width, depth=3).to(dtype)
    points = torch.randn(9, dim, dtype=dtype)
    ours = local_complexity(model, points, radius=radius, n_vertices=2 * half, seed=seed)
    reference = _vertex_path_on_shared_products(model, points, radius, 2 * half, seed)
    assert torch.equal(ours.counts, reference)


def test_points_exactly_on_first_layer_boundaries():
    """Dyadic weights and points with b = -w·x: the first layer's pre-activation at the centre
    is exactly 0 for half the units (sign(0) at the centre, ± at the vertices)."""
    gen = torch.Generator().manual_seed(5)
    model = mlp(d_in=8, width=6, depth=2)
    with torch.no_grad():
        model[0].weight.copy_(torch.randint(-4, 5, (6, 8), generator=gen) / 4)
        points = torch.randint(0, 3, (5, 8), generator=gen).float() / 2
        model[0].bias.copy_(-(model[0].weight @ points[0]))
        model[0].bias[3:] = 0.25
    with torch.no_grad():
        assert (model[0](points[:1])[0, :3] == 0).all()
    for radius in (1e-6, 0.5):
        ours = local_complexity(model, points, radius=radius, n_vertices=6, seed=2)
        reference = _vertex_path_on_shared_products(model, points, radius, 6, 2)
        assert torch.equal(ours.counts, reference)
    tiny = local_complexity(model, points[:1], radius=1e-6, n_vertices=6, seed=2)
    assert tiny.counts[0, 0] >= 3  # the three units through the point are cut


@pytest.mark.parametrize("case", ["mlp", "wide", "residual", "conv_bn"])
def test_shared_frame_path_agrees_with_published_algorithm_in_float32(case):
    """The shortcut computes the first affine layer as fl(Wx+b) + fl(r·Wu) rather than
    fl(W(x+r·u)+b): deeper values differ by rounding, so a count can differ only for a unit
    within rounding of 0 at a vertex. On these models and inputs the counts agree exactly."""
    torch.manual_seed(0)
    layers, use_input = None, False
    if case == "mlp":
        model, points, radius, n_vertices = mlp(), torch.randn(300, 20), 0.5, 20
    elif case == "wide":
        model = mlp(d_in=64, width=128, depth=4)
        points, radius, n_vertices = torch.randn(200, 64), 0.3, 50
    elif case == "residual":
        model, points, radius, n_vertices = ResidualMLP(), torch.randn(200, 12), 0.4, 10
        use_input = True
    else:
        model, points, radius, n_vertices = ConvBNPool(), torch.rand(60, 3, 8, 8), 0.05, 12
        layers = ["act*"]
    model.eval()
    if case == "residual":
        modules = list(model.acts)
    elif case == "conv_bn":
        modules = [model.bn1, model.bn2]
    else:
        modules = [m for m in model if isinstance(m, nn.Linear)][:-1]
    ours = local_complexity(model, points, radius=radius, n_vertices=n_vertices, layers=layers)
    reference = naive_counts(model, _hull(points, n_vertices, radius), modules, use_input=use_input)
    assert torch.equal(ours.counts, reference)
    assert reference.sum() > 0
