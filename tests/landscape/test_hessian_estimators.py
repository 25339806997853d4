"""Lanczos, Hutch++ and SLQ on matrices with a known spectrum (fast: plain matrix products)."""

from __future__ import annotations

import torch
from hessian_oracles import classification_data, exact_hessian, tiny_mlp, train_a_little
from torch import nn

from splinescope.landscape import estimate_trace, lanczos_eigenvalues, spectral_density


def _matrix(eigenvalues: torch.Tensor, seed: int = 0) -> torch.Tensor:
    n = eigenvalues.numel()
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return (q * eigenvalues) @ q.T


def _bulk_and_outliers(n: int = 1500, outliers=(12.0, 20.0, 31.0, 45.0, 60.0), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    bulk = torch.rand(n - len(outliers), generator=g, dtype=torch.float64) * 2 - 1
    return torch.cat([bulk, torch.tensor(outliers, dtype=torch.float64)])


def test_lanczos_top_k_on_a_known_spectrum():
    ev = _bulk_and_outliers(n=600)
    a = _matrix(ev)
    res = lanczos_eigenvalues(lambda v: a @ v, 600, k=5, tol=1e-8, return_vectors=True)
    want = torch.tensor([60.0, 45.0, 31.0, 20.0, 12.0], dtype=torch.float64)
    torch.testing.assert_close(res.eigenvalues, want, atol=1e-9, rtol=0)
    assert res.all_converged and res.n_hvp < 60
    resid = (res.vectors @ a - res.eigenvalues[:, None] * res.vectors).norm(dim=1)
    torch.testing.assert_close(resid, res.residual_norms, atol=1e-9, rtol=0)


def test_lanczos_restarts_on_an_invariant_subspace():
    """Rank 3: the Krylov space closes after 3 steps; the restart still finds the zeros."""
    ev = torch.zeros(50, dtype=torch.float64)
    ev[:3] = torch.tensor([3.0, 2.0, -1.0])
    a = _matrix(ev, seed=1)
    res = lanczos_eigenvalues(lambda v: a @ v, 50, k=5, tol=1e-8)
    torch.testing.assert_close(
        res.eigenvalues,
        torch.tensor([3.0, 2.0, 0, 0, -1.0], dtype=torch.float64),
        atol=1e-9,
        rtol=0,
    )
    assert res.all_converged


def test_trace_standard_error_covers_the_exact_trace():
    """Over 300 seeds the ±1.96 SE interval holds the exact trace ~95% of the time."""
    model = tiny_mlp(seed=7)
    x, y = classification_data(8, 48, (6,))
    train_a_little(model, x, y).eval()
    h = exact_hessian(model, nn.CrossEntropyLoss(), x, y)
    exact = float(h.trace())
    n = h.shape[0]
    for method, n_sketch, sketch in (
        ("hutch++", 6, "lanczos"),
        ("hutch++", 6, "random"),
        ("hutchinson", 0, "lanczos"),
    ):
        hits = 0
        seeds = 300
        cost = 2 * n_sketch if sketch == "random" else n_sketch
        for seed in range(seeds):
            res = estimate_trace(
                lambda v: h @ v,
                n,
                method=method,
                n_sketch=n_sketch,
                sketch=sketch,
                rtol=1e-12,
                max_hvp=cost + 30,
                min_samples=30,
                seed=seed,
            )
            assert res.n_samples == 30 and not res.converged
            hits += abs(res.trace - exact) <= 1.96 * res.standard_error
        # binomial(300, 0.95): sd 1.3 %; the SE itself is estimated from 30 samples
        assert 0.90 <= hits / seeds <= 0.99, (method, sketch, hits / seeds)


def test_trace_stopping_rule_and_hutchpp_beats_hutchinson_on_outliers():
    ev = _bulk_and_outliers(n=800)
    a = _matrix(ev, seed=2)
    exact = float(ev.sum())
    errors = {"hutch++": [], "hutchinson": []}
    for seed in range(10):
        for method in errors:
            res = estimate_trace(
                lambda v: a @ v, 800, method=method, rtol=1e-12, max_hvp=60, seed=seed
            )
            assert res.n_hvp == 60
            errors[method].append(abs(res.trace - exact) / exact)
    assert (
        torch.tensor(errors["hutch++"]).median() < 0.3 * torch.tensor(errors["hutchinson"]).median()
    )
    res = estimate_trace(lambda v: a @ v, 800, rtol=0.01, max_hvp=2000, seed=0)
    assert res.converged and res.relative_standard_error <= 0.01
    assert res.n_hvp == res.n_sketch + res.n_samples < 2000
    lo, hi = res.confidence_interval(0.999)
    assert lo <= exact <= hi


def test_trace_is_exact_when_the_sketch_spans_everything():
    ev = torch.linspace(-1, 2, 12, dtype=torch.float64)
    a = _matrix(ev)
    res = estimate_trace(lambda v: a @ v, 12, n_sketch=12, max_hvp=30)
    assert abs(res.trace - float(ev.sum())) < 1e-10 and res.standard_error == 0.0


def test_slq_moments_are_exact_spectral_moments_in_expectation():
    ev = _bulk_and_outliers(n=400, outliers=(5.0, 8.0))
    a = _matrix(ev, seed=3)
    n_starts = 40
    res = spectral_density(lambda v: a @ v, 400, n_starts=n_starts, n_steps=12, seed=1)
    est = res.moments(6)  # Gauss quadrature with 12 nodes is exact up to degree 23 per start
    for p in range(1, 7):
        lam = ev**p
        sd = ((2 * (lam.pow(2).mean() - lam.mean() ** 2) / (400 + 2)) / n_starts).sqrt()
        assert abs(float(est[p - 1] - lam.mean())) <= 5 * float(sd), p


def test_outliers_are_found_and_counted():
    ev = _bulk_and_outliers(n=1500)
    a = _matrix(ev, seed=4)
    res = spectral_density(lambda v: a @ v, 1500, n_starts=3, n_steps=60, seed=0)
    assert res.n_outliers == 5
    torch.testing.assert_close(
        res.outliers,
        torch.tensor([60.0, 45.0, 31.0, 20.0, 12.0], dtype=torch.float64),
        atol=1e-6,
        rtol=0,
    )
    assert -1.01 <= res.bulk_edges[0] < -0.8 and 0.8 < res.bulk_edges[1] <= 1.01
    # a negative outlier counts too; a spectrum that is all bulk has none
    ev2 = ev.clone()
    ev2[-1] = -30.0
    a2 = _matrix(ev2, seed=4)
    res2 = spectral_density(lambda v: a2 @ v, 1500, n_starts=3, n_steps=60)
    assert res2.n_outliers == 5 and abs(float(res2.outliers.min()) + 30) < 1e-6
    bulk = torch.sort(
        torch.rand(1500, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ).values
    a3 = _matrix(bulk, seed=6)
    res3 = spectral_density(lambda v: a3 @ v, 1500, n_starts=3, n_steps=60)
    assert res3.n_outliers == 0
