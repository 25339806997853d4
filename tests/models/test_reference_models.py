"""Reference models: shapes, closed-form parameter counts, init scale, determinism, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from splinescope.data import load_dataset
from splinescope.errors import SplinescopeError
from splinescope.models import MLP, PreActResNet, SmallCNN, build_model
from splinescope.nn import describe


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def mlp_count(d_in: int, c: int, width: int, depth: int, bias: bool) -> int:
    dims = [d_in] + [width] * depth + [c]
    return sum(a * b + (b if bias else 0) for a, b in zip(dims[:-1], dims[1:], strict=True))


def cnn_count(c_in, c, size, channels, batchnorm, pool):
    total, k = 0, 3 ** len(size)
    for c_out in channels:
        total += c_in * c_out * k + (2 * c_out if batchnorm else c_out)
        if pool != "none":
            size = tuple(s // 2 for s in size)
        c_in = c_out
    return total + c_in * math.prod(size) * c + c


def resnet_count(c_in, c, width, blocks, batchnorm):
    bias = 0 if batchnorm else 1
    bn = 2 if batchnorm else 0
    total = c_in * width * 9 + bias * width
    prev = width
    for s, n in enumerate(blocks):
        ch = width * 2**s
        for b in range(n):
            total += bn * prev + prev * ch * 9 + bias * ch  # bn1, conv1
            total += bn * ch + ch * ch * 9 + bias * ch  # bn2, conv2
            if (s > 0 and b == 0) or prev != ch:
                total += prev * ch + bias * ch  # 1x1 projection shortcut
            prev = ch
    return total + bn * prev + prev * c + c


@settings(max_examples=25, deadline=None)
@given(
    d_in=st.integers(1, 20),
    c=st.integers(1, 6),
    width=st.integers(1, 16),
    depth=st.integers(0, 4),
    bias=st.booleans(),
)
def test_mlp_shape_and_parameter_count(d_in, c, width, depth, bias):
    model = MLP(d_in, c, width=width, depth=depth, bias=bias)
    assert n_params(model) == mlp_count(d_in, c, width, depth, bias)
    assert model(torch.zeros(3, d_in)).shape == (3, c)
    names = [name for name, _ in model.named_children()]
    hidden = [f"{kind}{i}" for i in range(1, depth + 1) for kind in ("fc", "act")]
    assert names == ["flatten", *hidden, "out"]


def test_mlp_flattens_images_and_takes_activation_classes():
    model = MLP(64, 10, width=8, activation=nn.LeakyReLU)
    assert isinstance(model.act1, nn.LeakyReLU) and model.act1 is not model.act2
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert isinstance(MLP(4, 2, activation="gelu").act2, nn.GELU)


@pytest.mark.parametrize("scale", [0.5, 3.0, 8.0])
@pytest.mark.parametrize("bias", [True, False])
def test_init_scale_multiplies_every_parameter_exactly(scale, bias):
    torch.manual_seed(11)
    base = MLP(64, 10, width=50, depth=3, bias=bias)
    torch.manual_seed(11)
    scaled = MLP(64, 10, width=50, depth=3, bias=bias, init_scale=scale)
    for (name, p), (name_s, q) in zip(
        base.named_parameters(), scaled.named_parameters(), strict=True
    ):
        assert name == name_s
        assert torch.equal(q, p * scale), name
        assert torch.isclose(q.norm(), p.norm() * scale, rtol=1e-6)
    total = lambda m: torch.sqrt(sum((p**2).sum() for p in m.parameters()))  # noqa: E731
    assert torch.isclose(total(scaled), scale * total(base), rtol=1e-6)


@pytest.mark.parametrize(
    "size,channels,batchnorm,pool",
    [
        (8, (32, 64), False, "max"),
        ((8, 8), (4,), True, "avg"),
        ((9, 13), (3, 5, 7), True, "max"),
        ((40,), (8, 16), False, "max"),
        ((40,), (8, 16), True, "none"),
        (5, (2, 2), False, "none"),
    ],
)
def test_small_cnn_shape_and_parameter_count(size, channels, batchnorm, pool):
    model = SmallCNN(2, 7, size, channels=channels, batchnorm=batchnorm, pool=pool)
    spatial = (size, size) if isinstance(size, int) else size
    assert n_params(model) == cnn_count(2, 7, spatial, channels, batchnorm, pool)
    assert model(torch.rand(3, 2, *spatial)).shape == (3, 7)
    assert isinstance(model.conv1, nn.Conv2d if len(spatial) == 2 else nn.Conv1d)
    assert (model.conv1.bias is None) == batchnorm


@pytest.mark.parametrize(
    "width,blocks,batchnorm,hw",
    [
        (16, (1, 1), True, (8, 8)),
        (4, (2, 1, 1), False, (9, 7)),
        (8, (1,), True, (1, 1)),
        (3, (3, 2), True, (16, 16)),
    ],
)
def test_preact_resnet_shape_and_parameter_count(width, blocks, batchnorm, hw):
    model = PreActResNet(3, 5, width=width, blocks=blocks, batchnorm=batchnorm)
    assert n_params(model) == resnet_count(3, 5, width, blocks, batchnorm)
    assert model(torch.rand(2, 3, *hw)).shape == (2, 5)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert has_bn == batchnorm


def test_preact_block_is_pre_activation_residual():
    """A block without BN equals conv2(relu(conv1(relu(x)))) + x, written out by hand."""
    model = PreActResNet(2, 3, width=4, blocks=(1,), batchnorm=False)
    block = model.stage1.block1
    x = torch.randn(5, 4, 6, 6)
    expected = block.conv2(torch.relu(block.conv1(torch.relu(x)))) + x
    assert torch.allclose(block(x), expected, atol=1e-6)
    down = PreActResNet(2, 3, width=4, blocks=(1, 1), batchnorm=False).stage2.block1
    pre = torch.relu(x)
    assert torch.allclose(
        down(x), down.conv2(torch.relu(down.conv1(pre))) + down.shortcut(pre), atol=1e-6
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLP(10, 3, width=20, depth=3, init_scale=2.0),
        lambda: SmallCNN(1, 10, 8, batchnorm=True),
        lambda: PreActResNet(1, 10, width=4, blocks=(1, 2)),
    ],
)
def test_construction_is_deterministic_under_a_seed(make):
    torch.manual_seed(3)
    a = make()
    torch.manual_seed(3)
    b = make()
    torch.manual_seed(4)
    c = make()
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_partition_units_are_found_with_stable_names():
    mlp = describe(MLP(6, 3, width=5, depth=2), torch.zeros(1, 6))
    assert [(layer.name, layer.n_units) for layer in mlp.layers] == [("act1", 5), ("act2", 5)]
    cnn = describe(SmallCNN(1, 4, 8, channels=(2, 3)), torch.zeros(1, 1, 8, 8))
    assert [layer.name for layer in cnn.layers] == ["act1", "pool1", "act2", "pool2"]
    resnet = describe(PreActResNet(1, 4, width=2, blocks=(1, 1)).eval(), torch.zeros(1, 1, 8, 8))
    names = [layer.name for layer in resnet.layers]
    assert names == [
        "stage1.block1.act1",
        "stage1.block1.act2",
        "stage2.block1.act1",
        "stage2.block1.act2",
        "act",
    ]


def test_build_model_by_name_and_from_data():
    torch.manual_seed(0)
    direct = MLP(64, 10, width=32)
    torch.manual_seed(0)
    built = build_model("mlp", in_features=64, n_classes=10, width=32)
    assert all(
        torch.equal(p, q) for p, q in zip(direct.parameters(), built.parameters(), strict=True)
    )
    images = load_dataset("digits", flatten=False)
    for kind, cls in [
        ("MLP", MLP),
        ("cnn", SmallCNN),
        ("small_cnn", SmallCNN),
        ("resnet", PreActResNet),
    ]:
        model = build_model(kind, data=images)
        assert isinstance(model, cls)
        assert model(images.x_test[:4]).shape == (4, 10)
    signals = load_dataset("mnist1d", num_samples=100, flatten=False)
    assert build_model("cnn", data=signals, channels=(4,)).conv1.in_channels == 1
    assert build_model("mlp", data=load_dataset("modular", p=5), n_classes=7).out.out_features == 7


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: build_model("transformer"),
            "unknown model kind 'transformer'; available: mlp, cnn",
        ),
        (
            lambda: build_model("mlp", in_features=4, n_classes=2, widht=3),
            "'widht' for model 'mlp'; allowed: in_features",
        ),
        (lambda: build_model("mlp", n_classes=2), "model 'mlp' needs argument(s) 'in_features'"),
        (lambda: build_model("cnn", data=load_dataset("digits")), "SmallCNN needs inputs shaped"),
        (
            lambda: build_model(
                "resnet", data=load_dataset("mnist1d", num_samples=100, flatten=False)
            ),
            "PreActResNet needs inputs shaped [C, H, W]",
        ),
        (lambda: build_model("mlp", data="digits"), "data must be a SplitData"),
        (lambda: MLP(0, 2), "MLP: in_features must be an int >= 1"),
        (lambda: MLP(4, 2, depth=-1), "MLP: depth must be an int >= 0"),
        (lambda: MLP(4, 2, width=2.5), "MLP: width must be an int >= 1"),
        (lambda: MLP(4, 2, activation="swish"), "MLP: unknown activation 'swish'; available: relu"),
        (lambda: MLP(4, 2, activation=lambda: 3), "MLP: activation must build an nn.Module"),
        (lambda: MLP(4, 2, init_scale=0.0), "MLP: init_scale must be a finite number > 0"),
        (lambda: MLP(4, 2, init_scale=float("inf")), "MLP: init_scale must be a finite number > 0"),
        (lambda: SmallCNN(1, 2, 8, pool="min"), "SmallCNN: pool must be one of max, avg, none"),
        (lambda: SmallCNN(1, 2, 2, channels=(4, 4)), "too small for 2 2x pooling stages"),
        (lambda: SmallCNN(1, 2, (4, 4, 4)), "SmallCNN: input_size must be an int"),
        (lambda: SmallCNN(1, 2, 8, channels=()), "SmallCNN: channels must be a non-empty sequence"),
        (
            lambda: PreActResNet(1, 2, blocks=(1, 0)),
            "PreActResNet: each entry of blocks must be an int >= 1",
        ),
        (lambda: PreActResNet(1, 2, width=0), "PreActResNet: width must be an int >= 1"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(SplinescopeError) as info:
        call()
    assert message in str(info.value)
