"""Built-in data sets against their sources (scikit-learn, the mnist1d generator, brute force)."""

from __future__ import annotations

import random
import socket

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from splinescope.data import DATASET_NAMES, SplitData, from_tensors, load_dataset
from splinescope.data._datasets import _mnist1d_arrays
from splinescope.errors import SplinescopeError

SMALL = {
    "digits": {},
    "mnist1d": {"num_samples": 200},
    "mnist": {},
    "modular": {"p": 11},
    "moons": {"n_samples": 50, "n_test": 30},
    "circles": {"n_samples": 50, "n_test": 30},
    "spirals": {"n_samples": 50, "n_test": 30},
}


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_every_dataset_is_a_consistent_split(name):
    data = load_dataset(name, **SMALL[name])
    assert isinstance(data, SplitData) and data.name == name
    assert data.x_train.dtype == data.x_test.dtype == torch.float32
    assert data.y_train.dtype == data.y_test.dtype == torch.int64
    assert tuple(data.x_train.shape[1:]) == tuple(data.x_test.shape[1:]) == data.input_shape
    assert data.x_train.shape[0] == data.y_train.shape[0] == data.n_train
    assert data.x_test.shape[0] == data.y_test.shape[0] == data.n_test
    both = torch.cat([data.x_train, data.x_test])
    assert data.domain == (float(both.min()), float(both.max()))
    labels = torch.cat([data.y_train, data.y_test])
    assert int(labels.min()) >= 0 and int(labels.max()) < data.n_classes
    assert data.info["noisy_indices"].numel() == 0
    assert str(data).startswith(f"SplitData(name='{name}'")


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_loading_is_deterministic_and_leaves_global_rngs_alone(name):
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    if name == "mnist1d":
        _mnist1d_arrays.cache_clear()  # make the package's generator (global-RNG based) run
    a = load_dataset(name, seed=3, label_noise=0.2, **SMALL[name])
    b = load_dataset(name, seed=3, label_noise=0.2, **SMALL[name])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field))


def test_digits_is_sklearn_digits_scaled_and_split_1000_797():
    from sklearn.datasets import load_digits

    data = load_dataset("digits")
    assert (data.n_train, data.n_test, data.n_classes, data.input_shape) == (1000, 797, 10, (64,))
    assert data.domain == (0.0, 1.0)
    reference = load_digits()
    x_ref = torch.from_numpy((reference.data / 16.0).astype(np.float32))
    x_all = torch.cat([data.x_train, data.x_test])
    y_all = torch.cat([data.y_train, data.y_test])
    # the same 1797 (image, label) pairs, each exactly once
    ours = sorted(x.numpy().tobytes() + bytes([int(c)]) for x, c in zip(x_all, y_all, strict=True))
    theirs = sorted(
        x.numpy().tobytes() + bytes([int(c)]) for x, c in zip(x_ref, reference.target, strict=True)
    )
    assert ours == theirs
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.x_train, data.x_train)


def test_digits_image_shape_and_custom_test_size():
    flat = load_dataset("digits", seed=2)
    images = load_dataset("digits", seed=2, flatten=False, n_test=297)
    assert images.input_shape == (1, 8, 8) and images.n_train == 1500 and images.n_test == 297
    flat_default = load_dataset("digits", seed=2, flatten=False)
    assert torch.equal(flat_default.x_train.reshape(1000, 64), flat.x_train)


def test_mnist1d_equals_the_package_generator_and_never_touches_the_network(monkeypatch):
    from mnist1d.data import get_dataset_args, get_templates, make_dataset

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    _mnist1d_arrays.cache_clear()
    data = load_dataset("mnist1d", num_samples=500, generator_seed=5, flatten=False)
    args = get_dataset_args()
    args.num_samples, args.seed = 500, 5
    reference = make_dataset(args, get_templates())
    assert data.input_shape == (1, 40) and data.n_classes == 10
    assert (data.n_train, data.n_test) == (400, 100)
    assert torch.equal(data.x_train[:, 0], torch.from_numpy(reference["x"].astype(np.float32)))
    assert torch.equal(data.y_test, torch.from_numpy(reference["y_test"]))


def test_mnist1d_default_is_the_standard_4000_1000_set():
    data = load_dataset("mnist1d")
    assert (data.n_train, data.n_test, data.input_shape) == (4000, 1000, (40,))
    assert data.info["generator_seed"] == 42
    assert torch.bincount(data.y_train, minlength=10).min() > 350


@pytest.mark.parametrize("op", ["+", "-", "*", "add", "sub", "mul"])
def test_modular_labels_and_pairs_by_brute_force(op):
    p, fraction = 7, 0.4
    data = load_dataset("modular", p=p, op=op, train_fraction=fraction, seed=1)
    fn = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    fn = fn[{"add": "+", "sub": "-", "mul": "*"}.get(op, op)]
    assert data.input_shape == (2 * p,) and data.n_classes == p
    assert data.n_train == round(fraction * p * p) and data.n_train + data.n_test == p * p
    seen = set()
    for x, y in zip(
        torch.cat([data.x_train, data.x_test]), torch.cat([data.y_train, data.y_test]), strict=True
    ):
        assert x.sum() == 2 and set(x.unique().tolist()) == {0.0, 1.0}
        a, b = int(x[:p].argmax()), int(x[p:].argmax())
        assert int(y) == fn(a, b) % p
        seen.add((a, b))
    assert seen == {(a, b) for a in range(p) for b in range(p)}
    assert [tuple(r) for r in data.info["pairs_train"].tolist()] == [
        (int(x[:p].argmax()), int(x[p:].argmax())) for x in data.x_train
    ]


def test_moons_and_circles_equal_sklearn():
    from sklearn.datasets import make_circles, make_moons

    moons = load_dataset("moons", seed=4, n_samples=60, n_test=40, noise=0.2)
    x, y = make_moons(n_samples=100, noise=0.2, random_state=4)
    assert torch.equal(moons.x_train, torch.from_numpy(x[:60].astype(np.float32)))
    assert torch.equal(moons.y_test, torch.from_numpy(y[60:]))
    circles = load_dataset("circles", seed=4, n_samples=60, n_test=40, factor=0.3)
    x, y = make_circles(n_samples=100, noise=0.05, factor=0.3, random_state=4)
    assert torch.equal(circles.x_test, torch.from_numpy(x[60:].astype(np.float32)))
    assert torch.equal(circles.y_train, torch.from_numpy(y[:60]))


@pytest.mark.parametrize("n_arms,turns", [(2, 1.5), (3, 0.75), (5, 2.0)])
def test_spirals_follow_their_formula(n_arms, turns):
    data = load_dataset("spirals", noise=0.0, n_arms=n_arms, turns=turns, n_samples=200, n_test=101)
    x = torch.cat([data.x_train, data.x_test]).double()
    y = torch.cat([data.y_train, data.y_test])
    radius = x.norm(dim=1)
    angle = torch.atan2(x[:, 1], x[:, 0])
    expected = 2 * torch.pi * (turns * radius + y.double() / n_arms)
    gap = torch.remainder(angle - expected + torch.pi, 2 * torch.pi) - torch.pi
    assert gap.abs().max() < 1e-5
    counts = torch.bincount(y, minlength=n_arms)
    assert data.n_classes == n_arms and counts.max() - counts.min() <= 1


def test_train_subset_is_a_seeded_subset_with_the_full_domain():
    full = load_dataset("moons", seed=0)
    sub = load_dataset("moons", seed=0, n_train=100)
    index = sub.info["train_subset_indices"]
    assert sub.n_train == 100 and index.unique().numel() == 100
    assert torch.equal(sub.x_train, full.x_train[index])
    assert torch.equal(sub.y_train, full.y_train[index])
    assert torch.equal(sub.x_test, full.x_test)
    assert sub.domain == full.domain
    assert not torch.equal(
        load_dataset("moons", seed=5, n_train=100).info["train_subset_indices"], index
    )


@settings(max_examples=40, deadline=None)
@given(
    fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
    n=st.integers(1, 60),
    n_classes=st.integers(2, 7),
)
def test_label_noise_changes_exactly_that_share_to_other_classes(fraction, seed, n, n_classes):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_classes, (n,), generator=gen)
    y_test = torch.randint(0, n_classes, (5,), generator=gen)
    data = from_tensors(
        torch.rand(n, 3), y, torch.rand(5, 3), y_test, n_classes=n_classes,
        seed=seed, label_noise=fraction,
    )  # fmt: skip
    noisy = data.info["noisy_indices"]
    changed = (data.y_train != y).nonzero().flatten()
    assert torch.equal(changed, noisy)  # every chosen label changed, no other label did
    assert noisy.numel() == round(fraction * n)
    assert torch.equal(data.info["clean_y_train"], y)
    assert torch.equal(data.y_test, y_test)
    assert int(data.y_train.max()) < n_classes


def test_label_noise_is_spread_over_the_other_classes():
    data = load_dataset("digits", label_noise=1.0, seed=0)
    clean = data.info["clean_y_train"]
    assert (data.y_train != clean).all()
    shift = (data.y_train - clean) % 10
    counts = torch.bincount(shift, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 70  # ~111 each of the 9 other classes
    again = load_dataset("digits", label_noise=1.0, seed=0)
    assert torch.equal(again.y_train, data.y_train)
    assert not torch.equal(load_dataset("digits", label_noise=1.0, seed=1).y_train, data.y_train)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: load_dataset("cifar10"), "unknown dataset 'cifar10'; available: digits, mnist1d"),
        (
            lambda: load_dataset("digits", flaten=False),
            "'flaten' for dataset 'digits'; allowed: flatten",
        ),
        (
            lambda: load_dataset("digits", flatten="no"),
            "option 'flatten' of dataset 'digits' must be of type bool",
        ),
        (
            lambda: load_dataset("modular", p=2.5),
            "option 'p' of dataset 'modular' must be of type int",
        ),
        (lambda: load_dataset("modular", op="/"), "op for 'modular' must be one of"),
        (lambda: load_dataset("modular", p=1), "p for 'modular' must be >= 2"),
        (lambda: load_dataset("modular", train_fraction=1.0), "train_fraction for 'modular'"),
        (lambda: load_dataset("digits", n_test=0), "n_test for 'digits'"),
        (lambda: load_dataset("digits", n_train=1001), "n_train must be between 1 and 1000"),
        (lambda: load_dataset("digits", n_train=0), "n_train must be between 1 and 1000"),
        (lambda: load_dataset("digits", n_train=10.0), "n_train must be an int"),
        (lambda: load_dataset("digits", label_noise=1.5), "label_noise must be in [0, 1]"),
        (lambda: load_dataset("digits", label_noise="a lot"), "label_noise must be a float"),
        (lambda: load_dataset("digits", seed=-1), "seed must be >= 0"),
        (lambda: load_dataset("digits", seed="0"), "seed must be an int"),
        (lambda: load_dataset("moons", noise=-0.1), "noise for 'moons'"),
        (lambda: load_dataset("circles", factor=1.0), "factor for 'circles'"),
        (lambda: load_dataset("spirals", n_arms=1), "n_arms for 'spirals'"),
        (lambda: load_dataset("spirals", turns=0.0), "turns for 'spirals'"),
        (lambda: load_dataset("moons", n_samples=1), "n_samples for 'moons'"),
        (lambda: load_dataset("mnist1d", num_samples=10), "num_samples for 'mnist1d'"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(SplinescopeError) as info:
        call()
    assert message in str(info.value)
