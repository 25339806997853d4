"""Bad input gets a clear SplinescopeError naming the argument, the step or the batch."""

from __future__ import annotations

import pytest
import torch
from hessian_oracles import classification_data, tiny_cnn, tiny_mlp
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.landscape import CurvatureOperator, hessian_eigenvalues, hessian_trace

CE = nn.CrossEntropyLoss()


def _mlp_data():
    return tiny_mlp(seed=0), *classification_data(0, 16, (6,))


def test_model_without_trainable_parameters():
    model, x, y = _mlp_data()
    model.requires_grad_(False)
    with pytest.raises(SplinescopeError, match="no trainable parameters"):
        hessian_eigenvalues(model, CE, (x, y))


def test_loss_that_is_not_a_scalar():
    model, x, y = _mlp_data()
    with pytest.raises(
        SplinescopeError, match=r"loss_fn: must return a scalar tensor, got \(16,\)"
    ):
        hessian_trace(model, nn.CrossEntropyLoss(reduction="none"), (x, y))


def test_k_not_below_the_number_of_parameters():
    model = nn.Linear(2, 2)
    x, y = torch.randn(5, 2), torch.randint(0, 2, (5,))
    with pytest.raises(SplinescopeError, match="k: asked for 6 eigenvalues of a 6-parameter"):
        hessian_eigenvalues(model, CE, (x, y), k=6)
    with pytest.raises(SplinescopeError, match="k: expected a positive int"):
        hessian_eigenvalues(model, CE, (x, y), k=0)


def test_nan_loss_names_the_batch_and_the_step():
    model, x, y = _mlp_data()
    x = x.clone()
    x[13, 2] = float("nan")  # sample 13 lies in batch 3 of size 4
    batches = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 16, 4)]
    with pytest.raises(
        SplinescopeError, match=r"the loss is nan on batch 3 \(curvature product 1\)"
    ):
        hessian_eigenvalues(model, CE, batches)


def test_non_finite_product_with_a_finite_loss_names_the_batch():
    """|z|^1.5 has an infinite second derivative at z = 0: batch 1 sits exactly there."""
    model = nn.Linear(3, 1, bias=False)
    x = torch.randn(8, 3)
    x[4:] = 0.0
    y = torch.zeros(8, 1)

    def loss_fn(out, target):
        return (out - target).abs().pow(1.5).mean()

    op = CurvatureOperator(model, loss_fn, (x, y), batch_size=4)
    assert torch.isfinite(torch.tensor(op.loss()))
    with pytest.raises(SplinescopeError, match=r"non-finite hessian-vector product 1 on batch 1"):
        op.matvec(torch.ones(3))


def test_train_mode_batchnorm_with_micro_batches_is_refused():
    model = tiny_cnn(seed=0, bn=True)
    x, y = classification_data(0, 12, (2, 6, 6))
    with pytest.raises(
        SplinescopeError, match=r"bn_mode='train' with 3 \(micro-\)batches: .*own statistics"
    ):
        hessian_eigenvalues(model, CE, (x, y), bn_mode="train", batch_size=4)
    with pytest.raises(SplinescopeError, match="bn_mode='train' with 2"):
        hessian_trace(model, CE, [(x[:6], y[:6]), (x[6:], y[6:])], bn_mode="train")


def test_other_bad_arguments():
    model, x, y = _mlp_data()
    with pytest.raises(SplinescopeError, match="params: 'head' names no trainable"):
        CurvatureOperator(model, CE, (x, y), params=["head"])
    with pytest.raises(SplinescopeError, match="which: expected"):
        hessian_eigenvalues(model, CE, (x, y), which="top")
    with pytest.raises(SplinescopeError, match="data: no samples"):
        CurvatureOperator(model, CE, [])
    with pytest.raises(SplinescopeError, match="data: expected one batch"):
        CurvatureOperator(model, CE, 3)
    with pytest.raises(SplinescopeError, match="max_hvp"):
        hessian_trace(model, CE, (x, y), method="hutch++", max_hvp=5, n_sketch=10)
    with pytest.raises(SplinescopeError, match="max_hvp: 1 products cannot pay for 2 probes"):
        hessian_trace(model, CE, (x, y), max_hvp=1)
    with pytest.raises(SplinescopeError, match="vector: expected shape"):
        CurvatureOperator(model, CE, (x, y)).matvec(torch.ones(3))
