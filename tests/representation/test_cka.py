"""CKA against naive HSIC oracles, its invariances, its bias, minibatch and layer matrices."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from representation_oracles import (
    cka_from,
    hsic_biased,
    hsic_u_statistic,
    hsic_unbiased,
    linear_gram,
    rbf_gram,
)
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.representation import _hsic, cka, cka_matrix, minibatch_cka


def _pair(n, d1, d2, seed=0, mix=0.5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d1, generator=g, dtype=torch.float64) + 3.0  # non-zero mean on purpose
    w = torch.randn(d1, d2, generator=g, dtype=torch.float64)
    y = mix * x @ w + torch.randn(n, d2, generator=g, dtype=torch.float64) - 1.0
    return x, y


def test_song_formula_is_the_u_statistic():
    x, y = _pair(7, 3, 2)
    k, l_ = linear_gram(x.numpy()), linear_gram(y.numpy())
    assert hsic_unbiased(k, l_) == pytest.approx(hsic_u_statistic(k, l_), rel=1e-10)
    assert float(_hsic.hsic_unbiased_gram(torch.tensor(k), torch.tensor(l_))) == pytest.approx(
        hsic_u_statistic(k, l_), rel=1e-10
    )


# (n, d1, d2): feature-space form when n > widths, Gram form when the widths exceed n
@pytest.mark.parametrize("shape", [(40, 5, 3), (12, 30, 25)])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_linear_matches_naive_oracle(shape, estimator):
    x, y = _pair(*shape)
    k, l_ = linear_gram(x.numpy()), linear_gram(y.numpy())
    hsic = hsic_biased if estimator == "biased" else hsic_unbiased
    r = cka(x, y, estimator=estimator)
    assert r.raw_value == pytest.approx(cka_from(hsic, k, l_), rel=1e-9, abs=1e-12)
    assert r.hsic_xy == pytest.approx(hsic(k, l_), rel=1e-9, abs=1e-9)
    assert r.estimator == estimator and estimator in r.variant


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_rbf_matches_naive_oracle(estimator):
    x, y = _pair(20, 4, 3)
    r = cka(x, y, kernel="rbf", estimator=estimator, sigma=2.5)
    k, l_ = rbf_gram(x.numpy(), 2.5), rbf_gram(y.numpy(), 2.5)
    hsic = hsic_biased if estimator == "biased" else hsic_unbiased
    assert r.raw_value == pytest.approx(cka_from(hsic, k, l_), rel=1e-9)
    med = cka(x, y, kernel="rbf")
    dist = np.linalg.norm(x.numpy()[:, None] - x.numpy()[None], axis=2)
    assert med.sigma_x == pytest.approx(np.median(dist[np.triu_indices(20, 1)]))
    assert med.sigma_rule == "median pairwise distance"


def test_column_blocks_match_single_block(monkeypatch):
    x, y = _pair(50, 9, 7)
    whole = cka(x, y, estimator="unbiased").raw_value
    monkeypatch.setattr(_hsic, "COL_BLOCK", 2)
    monkeypatch.setattr(_hsic, "ROW_BLOCK", 8)
    assert cka(x, y, estimator="unbiased").raw_value == pytest.approx(whole, rel=1e-12)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_self_similarity_and_invariances(kernel, estimator):
    x, y = _pair(60, 6, 4)
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    assert cka(x, x, kernel=kernel, estimator=estimator).value == pytest.approx(1.0, abs=1e-12)
    base = cka(x, y, kernel=kernel, estimator=estimator).value
    # rbf with the median rule is invariant to isotropic scaling (sigma scales along)
    moved = cka(2.5 * x @ q + 1.0, y, kernel=kernel, estimator=estimator).value
    assert moved == pytest.approx(base, rel=1e-9)


def test_unbiased_independent_gaussians_near_zero_biased_has_known_bias():
    n, d = 32, 8
    g = torch.Generator().manual_seed(3)
    biased, unbiased = [], []
    for _ in range(200):
        x = torch.randn(n, d, generator=g, dtype=torch.float64)
        y = torch.randn(n, d, generator=g, dtype=torch.float64)
        biased.append(cka(x, y).value)
        unbiased.append(cka(x, y, estimator="unbiased").raw_value)
    # Wishart moments: E|Xc^T Yc|^2 / sqrt(E|Xc^T Xc|^2 E|Yc^T Yc|^2) = d / (n + d) = 0.2
    assert np.mean(biased) == pytest.approx(d / (n + d), abs=0.02)
    assert abs(np.mean(unbiased)) < 0.01


def test_conv_features_flatten_and_mean():
    x = torch.randn(30, 3, 4, 4, dtype=torch.float64)
    y = torch.randn(30, 5, dtype=torch.float64)
    assert cka(x, y).value == pytest.approx(cka(x.flatten(1), y).value)
    r = cka(x, y, conv="mean")
    assert r.value == pytest.approx(cka(x.mean(dim=(2, 3)), y).value)
    assert r.conv == "mean"


def test_float32_close_to_float64():
    x, y = _pair(300, 20, 10)
    assert cka(x.float(), y.float()).value == pytest.approx(cka(x, y).value, rel=1e-5)


def test_minibatch_single_batch_is_unbiased_cka_and_converges():
    x, y = _pair(64, 5, 4)
    one = minibatch_cka([(x, y)])
    assert one.raw_value == pytest.approx(cka(x, y, estimator="unbiased").raw_value, rel=1e-10)
    x, y = _pair(8192, 10, 6, seed=1, mix=0.3)
    full = cka(x, y, estimator="unbiased").value
    errs = []
    for b in (16, 128, 1024):
        mb = minibatch_cka((x[i : i + b], y[i : i + b]) for i in range(0, 8192, b))
        assert 0.0 <= mb.value <= 1.0 and mb.n_points == 8192
        errs.append(abs(mb.value - full))
    assert errs[-1] < 0.01 and errs[-1] <= errs[0]


def test_minibatch_clipping_stated():
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)) for _ in range(3)]
    results = [minibatch_cka(pairs[i:]) for i in range(3)]
    for r in results:
        assert 0.0 <= r.value <= 1.0 and r.clipped == (r.value != r.raw_value)
        assert abs(r.raw_value) <= 1.0 and "clipped" in r.clipping


def test_minibatch_small_batch_is_an_error():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    with pytest.raises(SplinescopeError, match="batch 1 has 3 points"):
        minibatch_cka([(torch.randn(8, 4), torch.randn(8, 4)), (x, y)])
    with pytest.raises(SplinescopeError, match="no batch"):
        minibatch_cka([])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 5 * 5, 6)

    def forward(self, x):
        h = self.bn(torch.relu(self.drop(self.conv(x))))
        return self.fc(h.flatten(1))


def _features(model, name, x):
    out = {}
    handle = dict(model.named_modules())[name].register_forward_hook(
        lambda m, i, o: out.__setitem__("h", o.detach())
    )
    was = model.training
    model.eval()
    with torch.no_grad():
        model(x)
    model.train(was)
    handle.remove()
    return out["h"]


def test_cka_matrix_matches_minibatch_on_collected_features():
    torch.manual_seed(0)
    a, b = Net(), Net()
    a.train()
    batches = [torch.randn(16, 2, 5, 5) for _ in range(3)]
    layers = ["conv", "bn", "fc"]
    rng = torch.get_rng_state()
    params = [p.clone() for p in a.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the once-per-process BatchNorm-in-eval note
        r = cka_matrix(a, b, batches, layers, ["conv", "fc"])
    assert a.training and all(m.training for m in a.modules())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(p, q) for p, q in zip(params, a.parameters()))
    assert all(p.grad is None for p in a.parameters())
    assert all(not m._forward_hooks for m in a.modules())
    assert r.values.shape == (3, 2) and r.row_labels == tuple(layers)
    for i, la in enumerate(layers):
        for j, lb in enumerate(["conv", "fc"]):
            pairs = [(_features(a, la, x), _features(b, lb, x)) for x in batches]
            assert float(r.values[i, j]) == pytest.approx(minibatch_cka(pairs).value, abs=1e-6)
    same = cka_matrix(a, a, batches, layers, layers)
    assert torch.allclose(torch.diagonal(same.values), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(same.values, same.values.T)


def test_cka_matrix_checkpoints_and_loader_tuples():
    torch.manual_seed(1)
    ckpts = [Net().eval(), Net().eval()]
    data = [(torch.randn(8, 2, 5, 5), torch.zeros(8)) for _ in range(2)]
    r = cka_matrix(ckpts, ckpts, data, ["fc"], ["fc"])
    assert r.row_labels == ("0:fc", "1:fc") and r.values.shape == (2, 2)
    assert float(r.values[0, 0]) == pytest.approx(1.0) and r.n_points == 16


def test_cka_matrix_missing_layer_names_it():
    m = Net()
    with pytest.raises(SplinescopeError, match=r"\['nope', 'fc2'\]"):
        cka_matrix(m, m, [torch.randn(8, 2, 5, 5)], ["conv", "nope", "fc2"], ["fc"])
    assert all(not mod._forward_hooks for mod in m.modules())


def test_cka_matrix_error_removes_hooks():
    m = Net()
    with pytest.raises(SplinescopeError, match="at least 4"):
        cka_matrix(m, m, [torch.randn(3, 2, 5, 5)], ["conv"], ["fc"])
    assert all(not mod._forward_hooks for mod in m.modules())
