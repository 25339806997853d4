"""Measuring curvature changes nothing about the model or the process: checked item by item."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hessian_oracles import classification_data, tiny_cnn
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.landscape import (
    hessian_density,
    hessian_eigenvalues,
    hessian_summary,
    hessian_trace,
)

CE = nn.CrossEntropyLoss()

CALLS = {
    "eigenvalues": lambda m, d, **kw: hessian_eigenvalues(m, CE, d, k=2, tol=1e-3, **kw),
    "trace": lambda m, d, **kw: hessian_trace(m, CE, d, max_hvp=25, **kw),
    "density": lambda m, d, **kw: hessian_density(m, CE, d, n_starts=2, n_steps=8, **kw),
    "summary": lambda m, d, **kw: hessian_summary(m, CE, d, k=2, n_steps=8, trace_max_hvp=25, **kw),
    "ggn": lambda m, d, **kw: hessian_eigenvalues(m, CE, d, k=2, tol=1e-3, curvature="ggn", **kw),
}


def _model_with_history():
    """A CNN with BN statistics, mixed module modes, some .grad set and some None."""
    model = tiny_cnn(seed=3, bn=True)
    x, y = classification_data(4, 20, (2, 6, 6))
    model.train()
    CE(model(x), y).backward()  # every parameter now has a .grad ...
    model[0].bias.grad = None  # ... except this one
    model[1].eval()  # mixed modes: one BN in eval, the rest in train
    return model, x, y


def _snapshot(model):
    return {
        "modes": [m.training for m in model.modules()],
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "versions": {n: p._version for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grad_ids": {
            n: (None if p.grad is None else id(p.grad)) for n, p in model.named_parameters()
        },
        "grads": {
            n: (None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()
        },
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
    }


def _rng_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_model_and_rng_are_left_as_they_were(call, bn_mode):
    model, x, y = _model_with_history()
    if bn_mode == "train":
        data = (x, y)  # train-mode BN: a single batch only
    else:  # a shuffling DataLoader draws from the global RNG while it is read
        data = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True
        )
    torch.manual_seed(11)
    np.random.seed(12)
    random.seed(13)
    before = _snapshot(model)
    rng_before = _rng_states()
    grad_enabled = torch.is_grad_enabled()

    CALLS[call](model, data, bn_mode=bn_mode)

    after = _snapshot(model)
    assert after["modes"] == before["modes"], "module training flags"
    for name, value in before["params"].items():
        assert torch.equal(after["params"][name], value), f"parameter {name}"
    assert after["versions"] == before["versions"], "no in-place write to any parameter"
    assert after["requires_grad"] == before["requires_grad"]
    assert after["grad_ids"] == before["grad_ids"], ".grad objects (None stays None)"
    for name, value in before["grads"].items():
        if value is not None:
            assert torch.equal(after["grads"][name], value), f".grad of {name}"
    for name, value in before["buffers"].items():
        assert torch.equal(after["buffers"][name], value), f"buffer {name}"
    assert after["hooks"] == before["hooks"], "no hooks left behind"
    rng_after = _rng_states()
    assert torch.equal(rng_after[0], rng_before[0]), "torch CPU RNG"
    np_b, np_a = rng_before[1], rng_after[1]
    assert np_a[0] == np_b[0] and np.array_equal(np_a[1], np_b[1]) and np_a[2:] == np_b[2:], (
        "numpy RNG"
    )
    assert rng_after[2] == rng_before[2], "python RNG"
    assert torch.is_grad_enabled() == grad_enabled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_is_left_as_it_was():
    model, x, y = _model_with_history()
    model = model.cuda()
    torch.cuda.manual_seed_all(5)
    before = torch.cuda.get_rng_state_all()
    hessian_trace(model, CE, (x.cuda(), y.cuda()), max_hvp=25)
    assert all(
        torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), before, strict=True)
    )


def test_state_is_restored_when_the_measurement_fails():
    model, x, y = _model_with_history()
    modes = [m.training for m in model.modules()]
    x_bad = x.clone()
    x_bad[0, 0, 0, 0] = float("nan")
    rng = torch.get_rng_state()
    with pytest.raises(SplinescopeError, match="batch 0"):
        hessian_eigenvalues(model, CE, (x_bad, y), k=2)
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)


def test_works_under_no_grad_and_is_deterministic():
    model, x, y = _model_with_history()
    with torch.no_grad():
        first = hessian_eigenvalues(model, CE, (x, y), k=2, seed=4)
        assert not torch.is_grad_enabled()
    second = hessian_eigenvalues(model, CE, (x, y), k=2, seed=4)
    assert torch.equal(first.eigenvalues, second.eigenvalues)
    # measuring twice does not accumulate anything (PyHessian's .grad leak doubles lambda_max)
    assert first.n_hvp == second.n_hvp
