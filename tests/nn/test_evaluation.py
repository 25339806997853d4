"""evaluate() against one full-batch computation."""

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from splinescope.nn.evaluation import Evaluation, evaluate
from splinescope.train import mse_onehot


def _model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 90), st.sampled_from(["mse", "ce"]))
def test_evaluate_equals_one_full_batch_computation(batch_size, loss):
    model = _model(batch_size)
    g = torch.Generator().manual_seed(batch_size)
    x, y = torch.rand(83, 6, generator=g), torch.randint(0, 3, (83,), generator=g)
    loss_fn = mse_onehot if loss == "mse" else F.cross_entropy
    got = evaluate(model, x, y, loss_fn, batch_size=batch_size)
    with torch.no_grad():
        logits = model(x)
    assert isinstance(got, Evaluation) and got.n == 83
    assert math.isclose(got.loss, float(loss_fn(logits, y)), rel_tol=1e-5)
    assert got.accuracy == float((logits.argmax(1) == y).double().mean())
