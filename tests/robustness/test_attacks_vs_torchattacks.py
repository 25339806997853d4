"""PGD and FGSM against torchattacks on a [0, 1] case (digits images, a trained small CNN).

torchattacks 3.5.1 imports without torchvision (its metadata asks for it, so install it with
``pip install --no-deps torchattacks``); it is a test dependency only.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torchattacks
from torch import nn

from splinescope.data import load_dataset
from splinescope.models import MLP, SmallCNN
from splinescope.robustness import fgsm, pgd
from splinescope.robustness._attacks import _plan, _run_pgd, attacking

MEAN_CE = nn.CrossEntropyLoss()  # torchattacks' loss; ours defaults to the summed one


@pytest.fixture(scope="module")
def trained():
    data = load_dataset("digits", flatten=False)
    assert data.domain == (0.0, 1.0)
    torch.manual_seed(0)
    model = SmallCNN(1, 10, 8, channels=(8, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(data.x_train[:400]), data.y_train[:400]).backward()
        optimizer.step()
    x, y = data.x_test[:64], data.y_test[:64]
    assert (model(x).argmax(1) == y).float().mean() > 0.8
    return model, x, y


@pytest.mark.parametrize("eps,alpha,steps", [(0.05, 0.01, 7), (0.1, 0.025, 10), (0.3, 0.1, 5)])
def test_linf_pgd_equals_torchattacks_from_the_clean_start(trained, eps, alpha, steps):
    model, x, y = trained
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    ours = pgd(
        model, x, y, eps=eps, step_size=alpha, steps=steps, norm="linf",
        domain=(0.0, 1.0), random_start=False, loss_fn=MEAN_CE,
    )  # fmt: skip
    assert (ours - theirs).abs().max() <= 1e-6
    assert (ours - x).abs().max() > 0.9 * eps  # the attack moved: not a vacuous agreement


@pytest.mark.parametrize("eps,alpha,steps", [(0.5, 0.1, 8), (1.5, 0.3, 10)])
def test_l2_pgd_equals_torchattacks_from_the_clean_start(trained, eps, alpha, steps):
    model, x, y = trained
    attack = torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=steps, random_start=False)
    # torchattacks adds 1e-10 to each gradient norm; on a confident model with a batch-mean
    # loss some norms are ~1e-8, so that term alone shortens their steps. Without it: identical.
    attack.eps_for_division = 0.0
    ours = pgd(
        model, x, y, eps=eps, step_size=alpha, steps=steps, norm="l2",
        domain=(0.0, 1.0), random_start=False, loss_fn=MEAN_CE,
    )  # fmt: skip
    assert (ours - attack(x, y)).abs().max() <= 1e-6
    assert (ours - x).flatten(1).norm(dim=1).max() > 0.9 * eps


def test_l2_pgd_matches_stock_torchattacks_where_gradients_are_not_tiny():
    data = load_dataset("digits", flatten=False)
    torch.manual_seed(1)
    model = MLP(64, 10, width=32)  # untrained: every gradient norm is far above 1e-10
    x, y = data.x_test[:64], data.y_test[:64]
    theirs = torchattacks.PGDL2(model, eps=1.0, alpha=0.2, steps=10, random_start=False)(x, y)
    ours = pgd(
        model, x, y, eps=1.0, step_size=0.2, steps=10, norm="l2",
        domain=(0.0, 1.0), random_start=False, loss_fn=MEAN_CE,
    )  # fmt: skip
    assert (ours - theirs).abs().max() <= 1e-6


def test_linf_pgd_equals_torchattacks_from_the_same_random_start(trained):
    model, x, y = trained
    eps, alpha, steps = 0.1, 0.02, 10
    torch.manual_seed(123)
    delta0 = torch.empty_like(x).uniform_(-eps, eps)  # torchattacks' own first draw
    torch.manual_seed(123)
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)(x, y)
    plan = _plan(
        model, x, y, eps=eps, step_size=alpha, steps=steps, domain=(0.0, 1.0),
        random_start=False, loss_fn=MEAN_CE,
    )  # fmt: skip
    with attacking(model):
        ours = _run_pgd(model, dataclasses.replace(plan, delta0=delta0))
    assert (ours - theirs).abs().max() <= 1e-6


@pytest.mark.parametrize("eps", [0.03, 0.2])
def test_fgsm_equals_torchattacks(trained, eps):
    model, x, y = trained
    theirs = torchattacks.FGSM(model, eps=eps)(x, y)
    ours = fgsm(model, x, y, eps=eps, domain=(0.0, 1.0), loss_fn=MEAN_CE)
    assert (ours - theirs).abs().max() <= 1e-6
