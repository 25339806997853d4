"""Curvature against the dense exact Hessian / GGN (torch.func on flattened float64 parameters)."""

from __future__ import annotations

import copy

import pytest
import torch
from hessian_oracles import (
    classification_data,
    dense,
    exact_hessian,
    exact_jacobian,
    probe,
    tiny_cnn,
    tiny_mlp,
    train_a_little,
)
from torch import nn
from torch.func import functional_call

from splinescope.landscape import (
    CurvatureOperator,
    hessian_density,
    hessian_eigenvalues,
    hessian_trace,
)

CE = nn.CrossEntropyLoss()


def _case(kind: str, trained: bool):
    if kind == "mlp":
        model = tiny_mlp(seed=1)
        x, y = classification_data(2, 48, (6,))
    else:
        model = tiny_cnn(seed=1, bn=True)
        x, y = classification_data(3, 24, (2, 6, 6))
    if trained:
        train_a_little(model, x, y)
    model.eval()
    return model, x, y


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("trained", [False, True], ids=["init", "trained"])
def test_operator_equals_exact_hessian(kind, trained):
    model, x, y = _case(kind, trained)
    h = exact_hessian(model, CE, x, y)
    for backend in ("double-backward", "forward-over-reverse"):
        op = CurvatureOperator(model, CE, (x, y), backend=backend)
        torch.testing.assert_close(dense(op), h, atol=2e-5 * h.abs().max(), rtol=0)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("trained", [False, True], ids=["init", "trained"])
@pytest.mark.parametrize("which", ["largest", "smallest", "magnitude"])
def test_top5_eigenvalues_match_exact(kind, trained, which):
    model, x, y = _case(kind, trained)
    ev = torch.linalg.eigvalsh(exact_hessian(model, CE, x, y))
    if which == "largest":
        want = ev.flip(0)[:5]
    elif which == "smallest":
        want = ev[:5]
    else:
        want = ev[ev.abs().argsort(descending=True)][:5]
    res = hessian_eigenvalues(model, CE, (x, y), k=5, which=which, tol=1e-4)
    assert res.all_converged
    rel = ((res.eigenvalues - want).abs() / want.abs()).max()
    assert rel <= 1e-4, (res.eigenvalues, want)
    assert res.n_hvp == res.n_steps < 150
    # the reported residual bounds the distance to the nearest true eigenvalue
    dist = (res.eigenvalues[:, None] - ev[None, :]).abs().min(dim=1).values
    assert (dist <= res.residual_norms + 1e-6 * ev.abs().max()).all()


def test_eigenvectors_are_eigenvectors():
    model, x, y = _case("mlp", True)
    h = exact_hessian(model, CE, x, y)
    res = hessian_eigenvalues(model, CE, (x, y), k=3, return_vectors=True)
    vecs = res.vectors.double()
    assert vecs.shape == (3, h.shape[0])
    torch.testing.assert_close(vecs @ vecs.T, torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)
    resid = (vecs @ h - res.eigenvalues[:, None] * vecs).norm(dim=1)
    assert (resid <= 1e-4 * res.eigenvalues.abs()).all()


def test_streamed_batches_and_microbatches_sum_exactly():
    model, x, y = _case("cnn", True)
    h = exact_hessian(model, CE, x, y)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=7)
    for data, batch_size in (((x, y), 5), (loader, None), (list(loader), 3)):
        op = CurvatureOperator(model, CE, data, batch_size=batch_size)
        assert len(op._batches) > 1
        ours, exact = probe(op, h)
        torch.testing.assert_close(ours, exact, atol=1e-4 * exact.abs().max(), rtol=0)
    # reduction="sum": the loss of the dataset is the sum of the batch losses
    sum_loss = nn.CrossEntropyLoss(reduction="sum")
    op = CurvatureOperator(model, sum_loss, loader, reduction="sum")
    ours, exact = probe(op, h * len(x))
    torch.testing.assert_close(ours, exact, atol=1e-4 * exact.abs().max(), rtol=0)


def test_parameter_subset_is_the_hessian_block():
    model, x, y = _case("mlp", True)
    h = exact_hessian(model, CE, x, y)
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    offsets = torch.tensor([0, *sizes]).cumsum(0)
    pick = [i for i, n in enumerate(names) if n.startswith("2.")]  # the second Linear
    idx = torch.cat([torch.arange(offsets[i], offsets[i + 1]) for i in pick])
    op = CurvatureOperator(model, CE, (x, y), params=["2"])
    assert op.names == ["2.weight", "2.bias"]
    torch.testing.assert_close(dense(op), h[idx][:, idx], atol=2e-5 * h.abs().max(), rtol=0)
    op = CurvatureOperator(model, CE, (x, y), params=["2.bias"])
    torch.testing.assert_close(
        dense(op), h[idx[-12:]][:, idx[-12:]], atol=2e-5 * h.abs().max(), rtol=0
    )


def test_train_mode_batchnorm_single_batch_uses_batch_statistics():
    """Oracle: torch.autograd.functional.hessian row by row (vmap cannot batch train-mode BN)."""
    model, x, y = _case("cnn", True)
    model.train()
    m = copy.deepcopy(model).double().train()
    named = [(n, p.detach()) for n, p in m.named_parameters()]
    sizes = [p.numel() for _, p in named]
    buffers = {n: b.clone() for n, b in m.named_buffers()}

    def loss(theta):
        parts = torch.split(theta, sizes)
        params = {n: q.view(p.shape) for (n, p), q in zip(named, parts, strict=True)}
        fresh = {k: v.clone() for k, v in buffers.items()}  # running stats move in the copies
        return CE(functional_call(m, {**fresh, **params}, (x.double(),)), y)

    theta = torch.cat([p.reshape(-1) for _, p in named])
    h = torch.autograd.functional.hessian(loss, theta, vectorize=False)
    torch.testing.assert_close(h, h.T, atol=1e-12, rtol=0)
    op = CurvatureOperator(model, CE, (x, y), bn_mode="train")
    torch.testing.assert_close(dense(op), h, atol=2e-5 * h.abs().max(), rtol=0)
    # and it differs from the eval-mode Hessian (the batch statistics matter)
    assert (dense(CurvatureOperator(model, CE, (x, y))) - h).abs().max() > 1e-3 * h.abs().max()


@pytest.mark.parametrize("loss_name", ["ce", "mse"])
def test_ggn_equals_closed_form(loss_name):
    model, x, y = _case("cnn", True)
    z, jac = exact_jacobian(model, x)  # (N, C), (N, C, n)
    n_samples, classes = z.shape
    if loss_name == "ce":
        loss_fn, target = CE, y
        p = z.softmax(dim=1)
        h_out = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]) / n_samples
        g = torch.einsum("nci,ncd,ndj->ij", jac, h_out, jac)
    else:
        loss_fn = nn.MSELoss()
        target = nn.functional.one_hot(y, classes).float()
        g = 2.0 / (n_samples * classes) * torch.einsum("nci,ncj->ij", jac, jac)
    op = CurvatureOperator(model, loss_fn, (x, target), curvature="ggn", batch_size=10)
    torch.testing.assert_close(dense(op), g, atol=2e-5 * g.abs().max(), rtol=0)


@pytest.mark.parametrize("kind", ["mlp", "cnn-no-bn"])
def test_relu_nets_trace_of_hessian_equals_trace_of_ggn(kind):
    if kind == "mlp":
        model, x, y = _case("mlp", True)
    else:
        model = tiny_cnn(seed=4, bn=False)
        x, y = classification_data(5, 24, (2, 6, 6))
        train_a_little(model, x, y).eval()
    h = exact_hessian(model, CE, x, y)
    g = dense(CurvatureOperator(model, CE, (x, y), curvature="ggn"))
    assert not torch.allclose(h, g, atol=1e-6)  # the matrices differ ...
    torch.testing.assert_close(g.trace(), h.trace(), atol=1e-5 * h.diagonal().abs().sum(), rtol=0)
    # ... and so do the estimators' views of them only by their noise
    th = hessian_trace(model, CE, (x, y), rtol=1e-9, max_hvp=120, seed=3)
    tg = hessian_trace(model, CE, (x, y), curvature="ggn", rtol=1e-9, max_hvp=120, seed=3)
    for est in (th, tg):
        assert abs(est.trace - float(h.trace())) <= 5 * est.standard_error + 1e-6


def test_trace_estimate_through_the_model_api():
    model, x, y = _case("cnn", True)
    exact = float(exact_hessian(model, CE, x, y).trace())
    res = hessian_trace(model, CE, (x, y), rtol=0.02, max_hvp=400, seed=0)
    assert res.converged and res.relative_standard_error <= 0.02
    assert res.n_hvp == res.n_sketch + res.n_samples <= 400
    assert abs(res.trace - exact) <= 4 * res.standard_error


def test_density_moments_match_exact_spectral_moments():
    model, x, y = _case("mlp", True)
    h = exact_hessian(model, CE, x, y)
    n = h.shape[0]
    ev = torch.linalg.eigvalsh(h)
    n_starts = 16
    res = hessian_density(model, CE, (x, y), n_starts=n_starts, n_steps=30, seed=0)
    est = res.moments(4)
    for p in range(1, 5):
        lam = ev**p
        exact = float(lam.mean())
        # v uniform on the sphere: Var(v^T A v) = 2 (mean(l^2) - mean(l)^2) / (n + 2)
        sd = ((2 * (lam.pow(2).mean() - lam.mean() ** 2) / (n + 2)) / n_starts).sqrt()
        assert abs(float(est[p - 1]) - exact) <= 5 * float(sd) + 1e-6 * float(ev.abs().max()) ** p
    # the smoothed density is a probability density whose mean is the first moment
    dx = float(res.grid[1] - res.grid[0])
    assert abs(float(res.density.sum()) * dx - 1.0) < 1e-3
    mean = float((res.grid * res.density).sum()) * dx
    assert abs(mean - float(est[0])) < 1e-3 * float(ev.abs().max())
    assert torch.allclose(res.weights.sum(dim=1), torch.ones(n_starts, dtype=torch.float64))
    assert res.n_hvp == n_starts * 30


def test_summary_of_one_operator():
    from splinescope.landscape import HessianSummary, hessian_summary

    model, x, y = _case("cnn", True)
    h = exact_hessian(model, CE, x, y)
    ev = torch.linalg.eigvalsh(h).flip(0)
    out = hessian_summary(model, CE, (x, y), k=3, n_steps=20, n_grid=50)
    assert isinstance(out, HessianSummary)
    for i in range(3):
        assert abs(float(out.eigen.eigenvalues[i]) - float(ev[i])) <= 1e-3 * float(ev[0])
    assert abs(out.trace.trace - float(h.trace())) <= 5 * out.trace.standard_error + 1e-6
    assert abs(out.loss - float(CE(model(x), y))) < 1e-5
    assert out.eigen.eigenvalues.shape == (3,) and out.density.density.shape == (50,)
    assert out.density.nodes.shape == out.density.weights.shape == (2, 20)
    assert out.density.n_outliers == out.density.outliers.numel()
    assert bool(out.eigen.converged.all())
    assert out.n_hvp >= out.eigen.n_hvp + out.trace.n_hvp
