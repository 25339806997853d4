"""Activation codes and their hash-encoder metrics against brute-force numpy versions."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.codes import (
    activation_codes,
    categorisation,
    class_distances,
    code_metrics,
    determinism,
    hamming,
    kmeans_matched_accuracy,
    states_to_bits,
)
from splinescope.geometry.exact import regions_in_plane


def net(seed=0, d=5, width=12, n_out=3):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(d, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.LeakyReLU(0.1),
        nn.Linear(width, n_out),
    )


def forward_bits(model, x):
    """Direct forward pass with hooks on the activations' inputs: bit = pre-activation > 0."""
    seen = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, inp: seen.append((inp[0] > 0).numpy()))
        for m in model
        if isinstance(m, (nn.ReLU, nn.LeakyReLU))
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return np.concatenate(seen, axis=1)


def test_codes_of_random_nets_equal_a_direct_forward_pass():
    model = net()
    x = torch.randn(300, 5)
    codes = activation_codes(model, x)
    np.testing.assert_array_equal(codes.bits(), forward_bits(model, x))
    assert codes.n_bits == 24 and codes.layer_bits == (12, 12)
    assert codes.packed.shape == (300, 3) and codes.packed.dtype == np.uint8


def test_region_codes_match_activation_codes_at_centroids():
    model = net(d=2)
    part = regions_in_plane(
        model, torch.zeros(2), torch.tensor([1.0, 0]), torch.tensor([0, 1.0]), 2.0
    )
    x = part.to_input(part.centroids())
    codes = activation_codes(copy.deepcopy(model).double(), x)
    np.testing.assert_array_equal(codes.packed, part.codes)


def test_argmax_states_are_binary_expanded():
    bits = states_to_bits(np.array([[0, 5], [65535, 2]]), "argmax")
    assert bits.shape == (2, 32)
    assert bits[0, :16].sum() == 0 and bits[1, :16].all()
    assert int("".join("1" if b else "0" for b in bits[0, 16:]), 2) == 5
    with pytest.raises(SplinescopeError, match="max-pool index"):
        states_to_bits(np.array([[70000]]), "argmax")


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 40),
    n_bits=st.integers(1, 30),
    seed=st.integers(0, 1000),
    n_classes=st.integers(1, 4),
)
def test_metrics_against_brute_force(n, n_bits, seed, n_classes):
    rng = np.random.default_rng(seed)
    bits = rng.random((n, n_bits)) < rng.uniform(0.05, 0.95)
    bits[rng.integers(0, n, n // 3)] = bits[0]  # force some shared codes
    packed = np.packbits(bits, axis=1)
    labels = rng.integers(0, n_classes, n)
    # Hamming by direct comparison of bits.
    direct = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    np.testing.assert_array_equal(hamming(packed, packed, chunk=7), direct)
    # Determinism by counting with a dict.
    counts: dict[bytes, int] = {}
    for row in bits:
        counts[row.tobytes()] = counts.get(row.tobytes(), 0) + 1
    det = determinism(packed)
    assert det.n_distinct == len(counts)
    assert det.redundancy_ratio == pytest.approx((n - len(counts)) / n)
    assert det.single_sample_share == pytest.approx(
        sum(v == 1 for v in counts.values()) / len(counts)
    )
    # Within/between class distances over all pairs i < j.
    within = [
        direct[i, j] for i, j in itertools.combinations(range(n), 2) if labels[i] == labels[j]
    ]
    between = [
        direct[i, j] for i, j in itertools.combinations(range(n), 2) if labels[i] != labels[j]
    ]
    dist = class_distances(packed, labels)
    if within:
        assert dist.within == pytest.approx(np.mean(within))
    else:
        assert np.isnan(dist.within)
    if between:
        assert dist.between == pytest.approx(np.mean(between))
    else:
        assert np.isnan(dist.between)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), k=st.integers(1, 5), n=st.integers(5, 40))
def test_hungarian_matching_against_all_permutations(seed, k, n):
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, k, n)
    labels = rng.integers(0, k, n)
    best = max(
        np.mean(np.array(perm)[clusters] == labels) for perm in itertools.permutations(range(k))
    )
    acc, mapping = kmeans_matched_accuracy(clusters, labels, k, k)
    assert acc == pytest.approx(best)
    assert np.mean(mapping[clusters] == labels) == pytest.approx(acc)


def test_categorisation_against_brute_force_knn():
    rng = np.random.default_rng(0)
    centres = rng.random((3, 40)) < 0.5
    y_train, y_test = rng.integers(0, 3, 90), rng.integers(0, 3, 60)

    def noisy(y):
        flips = rng.random((len(y), 40)) < 0.12
        return np.packbits(centres[y] ^ flips, axis=1)

    train, test = noisy(y_train), noisy(y_test)
    cat = categorisation(train, y_train, test, y_test, n_neighbors=1, seed=0)
    d_test = hamming(test, train)
    # 1-NN by brute force; ties broken towards the lower index, as scikit-learn's brute search.
    nearest = np.argmin(d_test, axis=1)
    assert cat.knn_test == pytest.approx(np.mean(y_train[nearest] == y_test))
    d_train = hamming(train, train).astype(float)
    np.fill_diagonal(d_train, np.inf)
    assert cat.knn_train == pytest.approx(np.mean(y_train[np.argmin(d_train, axis=1)] == y_train))
    # Well-separated clusters: every classifier is (nearly) perfect.
    for value in (cat.logreg_train, cat.logreg_test, cat.kmeans_train, cat.kmeans_test):
        assert value > 0.95


def test_kmeans_with_fewer_distinct_codes_than_classes_is_exact_and_quiet():
    """Three distinct codes, five classes: every code is its own cluster (the K-means optimum),
    the accuracy is the best matching of codes to labels, and scikit-learn does not warn."""
    import warnings

    rng = np.random.default_rng(3)
    codes = np.packbits(rng.random((3, 16)) < 0.5, axis=1)
    which = rng.integers(0, 3, 60)
    y = rng.integers(0, 5, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cat = categorisation(codes[which], y, codes[which[:20]], y[:20], seed=0)
    best = max(np.mean(np.array(perm)[which] == y) for perm in itertools.permutations(range(5), 3))
    assert cat.kmeans_train == pytest.approx(best)


def test_code_metrics_probe_scalars():
    model = net(d=4)
    x = torch.randn(120, 4)
    y = torch.randint(0, 3, (120,))
    out = code_metrics(model, x[:80], y[:80], x[80:], y[80:])
    assert set(out) == {
        "n_bits",
        "n_distinct",
        "redundancy_ratio",
        "single_sample_share",
        "within_hamming",
        "between_hamming",
        "knn_train",
        "knn_test",
        "logreg_train",
        "logreg_test",
        "kmeans_train",
        "kmeans_test",
    }
    assert 0 <= out["redundancy_ratio"] < 1 and out["n_bits"] == 24
    assert set(code_metrics(model, x, y)) == {
        "n_bits",
        "n_distinct",
        "redundancy_ratio",
        "single_sample_share",
        "within_hamming",
        "between_hamming",
    }


def test_bad_input():
    with pytest.raises(SplinescopeError, match="x: expected a batch"):
        activation_codes(net(), torch.zeros(5))
    with pytest.raises(SplinescopeError, match="codes"):
        determinism(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(SplinescopeError, match="labels"):
        class_distances(np.zeros((3, 2), dtype=np.uint8), np.zeros(4))
    with pytest.raises(SplinescopeError, match="bytes per code"):
        hamming(np.zeros((3, 2), dtype=np.uint8), np.zeros((3, 3), dtype=np.uint8))
