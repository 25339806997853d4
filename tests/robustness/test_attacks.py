"""FGSM/PGD against closed forms and a naive Madry et al. loop; projection properties; measuring
changes nothing; adversarial accuracy; errors."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.models import MLP
from splinescope.robustness import adversarial_accuracy, fgsm, pgd
from splinescope.robustness._attacks import _random_start


def _linear(d: int, c: int, seed: int) -> MLP:
    torch.manual_seed(seed)
    return MLP(d, c, depth=0).double()


def _closed_form_gradient(model: MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d CE(Wx + b, y) / dx = W^T (softmax(Wx + b) - onehot(y)), per sample."""
    w, b = model.out.weight, model.out.bias
    p = torch.softmax(x @ w.T + b, dim=1)
    return (p - F.one_hot(y, w.shape[0]).to(p.dtype)) @ w


@pytest.mark.parametrize("c", [2, 5])
def test_fgsm_on_a_linear_model_is_the_closed_form_step(c):
    model = _linear(6, c, seed=c)
    gen = torch.Generator().manual_seed(0)
    lo, hi = -2.0, 3.0
    x = (torch.rand(40, 6, generator=gen, dtype=torch.float64) * 5 - 2).clamp(lo, hi)
    y = torch.randint(0, c, (40,), generator=gen)
    with torch.no_grad():
        g = _closed_form_gradient(model, x, y)
    if c == 2:  # direction x + eps * sign(w_1 - w_0) for label 0, the opposite for label 1
        w = model.out.weight.detach()
        direction = torch.where(y[:, None] == 0, 1.0, -1.0) * (w[1] - w[0])
        assert torch.equal(direction.sign(), g.sign())
    eps = 0.4
    linf = fgsm(model, x, y, eps=eps, norm="linf", domain=(lo, hi))
    assert torch.allclose(linf, (x + eps * g.sign()).clamp(lo, hi), atol=1e-12)
    l2 = fgsm(model, x, y, eps=eps, norm="l2", domain=(lo, hi))
    step = eps * g / g.norm(dim=1, keepdim=True)
    assert torch.allclose(l2, (x + step).clamp(lo, hi), atol=1e-12)
    assert ((linf == lo) | (linf == hi)).any()  # the domain clamp was exercised


def _naive_madry_pgd(model, x, y, delta0, *, eps, step_size, steps, norm, lo, hi):
    """Madry et al.'s PGD written plainly, one sample at a time, summed cross-entropy."""
    out = []
    for xi, yi, di in zip(x, y, delta0, strict=True):
        adv = (xi + di).clamp(lo, hi)
        for _ in range(steps):
            adv = adv.detach().requires_grad_(True)
            loss = F.cross_entropy(model(adv[None]), yi[None], reduction="sum")
            (g,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                if norm == "linf":
                    adv = adv + step_size * g.sign()
                    adv = torch.maximum(torch.minimum(adv, xi + eps), xi - eps)
                else:
                    adv = adv + step_size * g / g.norm()
                    d = adv - xi
                    if d.norm() > eps:
                        d = d * (eps / d.norm())
                    adv = xi + d
                adv = adv.clamp(lo, hi)
        out.append(adv.detach())
    return torch.stack(out)


@pytest.mark.parametrize("norm,eps,step_size", [("linf", 0.3, 0.08), ("l2", 1.5, 0.4)])
def test_pgd_equals_a_naive_madry_loop_on_a_domain_that_is_not_unit(norm, eps, step_size):
    torch.manual_seed(5)
    model = MLP(10, 4, width=16).double()
    gen = torch.Generator().manual_seed(1)
    lo, hi = -5.5, 4.5  # as MNIST-1D's domain
    x = (torch.randn(24, 10, generator=gen, dtype=torch.float64) * 3).clamp(lo, hi)
    y = torch.randint(0, 4, (24,), generator=gen)
    ours = pgd(
        model, x, y, eps=eps, step_size=step_size, steps=12, norm=norm, domain=(lo, hi), seed=9
    )
    delta0 = _random_start(x, eps, norm, 9)
    naive = _naive_madry_pgd(
        model, x, y, delta0, eps=eps, step_size=step_size, steps=12, norm=norm, lo=lo, hi=hi
    )
    assert torch.allclose(ours, naive, atol=1e-10)
    assert ((ours == lo) | (ours == hi)).any()


@settings(max_examples=40, deadline=None)
@given(
    norm=st.sampled_from(["linf", "l2"]),
    lo=st.floats(-3.0, 0.5),
    width=st.floats(0.1, 4.0),
    eps=st.floats(0.0, 2.0),
    step_frac=st.floats(0.05, 1.5),
    steps=st.integers(0, 4),
    random_start=st.booleans(),
    seed=st.integers(0, 1000),
    shape=st.sampled_from([(5,), (1, 3, 3), (2, 4)]),
)
def test_pgd_stays_in_the_ball_and_the_domain(
    norm, lo, width, eps, step_frac, steps, random_start, seed, shape
):
    hi = lo + width
    gen = torch.Generator().manual_seed(seed)
    x = lo + width * torch.rand(7, *shape, generator=gen)
    x[0] = lo  # points on the domain's faces
    x[1] = hi
    y = torch.randint(0, 3, (7,), generator=gen)
    torch.manual_seed(seed)
    model = MLP(int(np.prod(shape)), 3, width=8, init_scale=3.0)
    x_adv = pgd(
        model, x, y, eps=eps, step_size=max(step_frac * eps, 1e-3), steps=steps, norm=norm,
        domain=(lo, hi), random_start=random_start, seed=seed,
    )  # fmt: skip
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert x_adv.min() >= lo and x_adv.max() <= hi
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    slack = 4 * torch.finfo(torch.float32).eps * max(abs(lo), abs(hi), 1.0)
    assert (size <= eps * (1 + 1e-5) + slack).all(), (size.max(), eps)


def test_l2_projection_keeps_short_perturbations_and_rescales_long_ones():
    from splinescope.robustness._attacks import _project

    delta = torch.tensor([[0.3, 0.4], [3.0, 4.0], [0.0, 0.0]], dtype=torch.float64)
    projected = _project(delta, 1.0, "l2")
    assert torch.equal(projected[0], delta[0])
    assert torch.allclose(projected[1], torch.tensor([0.6, 0.8], dtype=torch.float64))
    assert torch.equal(projected[2], delta[2])
    assert torch.equal(_project(delta, 0.0, "l2"), torch.zeros_like(delta))
    assert torch.equal(
        _project(delta, 0.5, "linf")[1], torch.tensor([0.5, 0.5], dtype=torch.float64)
    )


def test_random_start_is_uniform_in_the_ball_seeded_and_private():
    x = torch.zeros(4000, 2, dtype=torch.float64)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    l2 = _random_start(x, 2.0, "l2", seed=3)
    linf = _random_start(x, 2.0, "linf", seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(l2, _random_start(x, 2.0, "l2", seed=3))
    assert not torch.equal(l2, _random_start(x, 2.0, "l2", seed=4))
    radius = l2.norm(dim=1) / 2.0
    assert radius.max() <= 1.0
    # uniform in a disc: P(r <= s) = s^2
    for s in (0.3, 0.5, 0.8):
        assert abs((radius <= s).double().mean() - s**2) < 0.03
    assert linf.abs().max() <= 2.0 and abs(linf.mean()) < 0.05
    assert abs((linf.abs() <= 1.0).double().mean() - 0.5) < 0.03


def test_random_start_does_not_depend_on_the_global_seed():
    model = MLP(4, 3, width=8)
    x, y = torch.rand(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    kw = dict(eps=0.2, step_size=0.05, steps=3, domain=(0.0, 1.0), seed=4)
    torch.manual_seed(1)
    a = pgd(model, x, y, **kw)
    torch.manual_seed(2)
    b = pgd(model, x, y, **kw)
    c = pgd(model, x, y, **{**kw, "seed": 5})
    assert torch.equal(a, b) and not torch.equal(a, c)


class _Net(nn.Module):
    """Conv-BN-ReLU-Dropout-Linear: BatchNorm buffers and dropout's RNG use both matter."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 16, 3)

    def forward(self, x):
        return self.fc(self.drop(self.act(self.bn(self.conv(x)))).flatten(1))


ATTACK_CALLS = {
    "pgd": lambda m, x, y: pgd(m, x, y, eps=0.1, step_size=0.03, steps=4, domain=(0.0, 1.0)),
    "pgd_l2": lambda m, x, y: pgd(
        m, x, y, eps=0.5, step_size=0.2, steps=4, norm="l2", domain=(0.0, 1.0)
    ),
    "fgsm": lambda m, x, y: fgsm(m, x, y, eps=0.1, domain=(0.0, 1.0)),
    "accuracy": lambda m, x, y: adversarial_accuracy(
        m, x, y, attack="pgd", eps=0.1, step_size=0.03, steps=4, domain=(0.0, 1.0), batch_size=3
    ),
}


@pytest.mark.filterwarnings("ignore:splinescope measures BatchNorm layers in eval mode")
@pytest.mark.parametrize("call", ATTACK_CALLS)
def test_measuring_changes_nothing(call):
    torch.manual_seed(0)
    model = _Net()
    x, y = torch.rand(8, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    F.cross_entropy(model(x), y).backward()  # .grad populated, BN statistics moved
    model.fc.bias.grad = None
    model.conv.bias.requires_grad_(False)
    model.drop.eval()  # mixed modes must come back mixed
    modes = {name: m.training for name, m in model.named_modules()}
    requires = {name: p.requires_grad for name, p in model.named_parameters()}
    state = copy.deepcopy(model.state_dict())  # parameters and buffers
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    torch.manual_seed(42)
    np.random.seed(42)
    random.seed(42)
    rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())

    result = ATTACK_CALLS[call](model, x, y)

    assert {name: m.training for name, m in model.named_modules()} == modes  # mode
    assert {n: p.requires_grad for n, p in model.named_parameters()} == requires  # requires_grad
    after = model.state_dict()
    for key, value in state.items():  # parameters and buffers (running stats, batch count)
        assert torch.equal(after[key], value), key
    for name, p in model.named_parameters():  # .grad, including one that was None
        assert (p.grad is None) == (grads[name] is None), name
        assert p.grad is None or torch.equal(p.grad, grads[name]), name
    assert torch.equal(torch.get_rng_state(), rng[0])  # global RNGs
    assert np.array_equal(np.random.get_state()[1], rng[1])
    assert random.getstate() == rng[2]
    assert isinstance(result, float) or not result.requires_grad


def test_attacks_work_inside_no_grad_and_inference_mode():
    torch.manual_seed(0)
    model = MLP(5, 3, width=8)
    x, y = torch.rand(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    kw = dict(eps=0.2, step_size=0.05, steps=5, domain=(0.0, 1.0))
    reference = pgd(model, x, y, **kw)
    with torch.no_grad():
        assert torch.equal(pgd(model, x, y, **kw), reference)
    with torch.inference_mode():
        assert torch.equal(pgd(model, x, y, **kw), reference)
        x_inference = x.clone()
        assert torch.equal(pgd(model, x_inference, y, **kw), reference)


@pytest.fixture(scope="module")
def moons_model():
    from splinescope.data import load_dataset

    data = load_dataset("moons", n_samples=300, n_test=300, noise=0.1)
    torch.manual_seed(0)
    model = MLP(2, 2, width=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(data.x_train), data.y_train).backward()
        optimizer.step()
    return model, data


def test_adversarial_accuracy_is_the_share_still_correct(moons_model):
    model, data = moons_model
    x, y = data.x_test, data.y_test
    kw = dict(eps=0.3, step_size=0.1, steps=10, domain=data.domain, seed=2)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).double().mean().item()
    x_adv = pgd(model, x, y, **kw)
    with torch.no_grad():
        expected = (model(x_adv).argmax(1) == y).double().mean().item()
    acc = adversarial_accuracy(model, x, y, attack="pgd", **kw)
    assert acc == expected
    assert clean > 0.95 and acc < clean - 0.1  # the attack bites on a trained model
    for batch_size in (1, 7, 64, 1000):
        assert adversarial_accuracy(model, x, y, attack="pgd", batch_size=batch_size, **kw) == acc
    fgsm_acc = adversarial_accuracy(model, x, y, attack="fgsm", eps=0.3, domain=data.domain)
    with torch.no_grad():
        x_fgsm = fgsm(model, x, y, eps=0.3, domain=data.domain)
        assert fgsm_acc == (model(x_fgsm).argmax(1) == y).double().mean().item()
    for attack in ("pgd", "fgsm"):
        zero = {**kw, "eps": 0.0} if attack == "pgd" else {"eps": 0.0, "domain": data.domain}
        assert adversarial_accuracy(model, x, y, attack=attack, **zero) == pytest.approx(clean)


def test_l2_attack_in_a_corner_of_the_domain_respects_it(moons_model):
    model, data = moons_model
    lo, hi = data.domain
    x = torch.tensor([[lo, lo], [hi, hi], [lo, hi]])
    y = torch.tensor([0, 1, 0])
    x_adv = pgd(model, x, y, eps=5.0, step_size=2.0, steps=5, norm="l2", domain=data.domain)
    assert x_adv.min() >= lo and x_adv.max() <= hi


MODEL = MLP(4, 3, width=4)
X, Y = torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])
PGD_KW = dict(eps=0.1, step_size=0.02, steps=3, domain=(0.0, 1.0))


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: adversarial_accuracy(MODEL, X, Y, attack="cw", **PGD_KW),
            "attack must be one of pgd, fgsm, got 'cw'",
        ),
        (
            lambda: adversarial_accuracy(MODEL, X, Y, epsilon=0.1, **PGD_KW),
            "unknown argument(s) 'epsilon' for attack 'pgd'",
        ),
        (
            lambda: adversarial_accuracy(MODEL, X, Y, attack="fgsm", **PGD_KW),
            "unknown argument(s) 'step_size', 'steps' for attack 'fgsm'",
        ),
        (
            lambda: adversarial_accuracy(MODEL, X, Y, eps=0.1, domain=(0.0, 1.0)),
            "attack 'pgd' needs argument(s) step_size, steps",
        ),
        (
            lambda: adversarial_accuracy(MODEL, X, Y, batch_size=0, **PGD_KW),
            "batch_size must be an int >= 1",
        ),
        (lambda: adversarial_accuracy(MODEL, X[:0], Y[:0], **PGD_KW), "x is empty"),
        (lambda: pgd(MODEL, X, Y, norm="l1", **PGD_KW), "norm must be one of linf, l2, got 'l1'"),
        (
            lambda: pgd(MODEL, X, Y, **{**PGD_KW, "domain": (1.0, 0.0)}),
            "domain must be a (lo, hi) pair",
        ),
        (
            lambda: pgd(MODEL, X, Y, **{**PGD_KW, "domain": (0.0, 1.0, 2.0)}),
            "domain must be a (lo, hi) pair",
        ),
        (lambda: pgd(MODEL, X * 3, Y, **PGD_KW), "outside domain (0.0, 1.0)"),
        (lambda: pgd(MODEL, X, Y, **{**PGD_KW, "eps": -0.1}), "eps must be >= 0"),
        (
            lambda: pgd(MODEL, X, Y, **{**PGD_KW, "eps": float("nan")}),
            "eps must be a finite number",
        ),
        (lambda: pgd(MODEL, X, Y, **{**PGD_KW, "step_size": 0.0}), "step_size must be > 0"),
        (lambda: pgd(MODEL, X, Y, **{**PGD_KW, "steps": 2.5}), "steps must be an int >= 0"),
        (lambda: pgd(MODEL, X, Y, seed=-3, **PGD_KW), "seed must be an int >= 0"),
        (lambda: pgd(MODEL, X, Y[:3], **PGD_KW), "y must be a label tensor [N] with N = 5"),
        (lambda: pgd(MODEL, X.long(), Y, **PGD_KW), "x must be a floating-point tensor"),
        (lambda: pgd("model", X, Y, **PGD_KW), "model must be an nn.Module"),
        (lambda: pgd(MODEL, X, Y, loss_fn="ce", **PGD_KW), "loss_fn must be callable"),
        (
            lambda: pgd(MODEL, X, Y, loss_fn=nn.CrossEntropyLoss(reduction="none"), **PGD_KW),
            "loss_fn(logits, y) must return a scalar tensor",
        ),
        (lambda: fgsm(MODEL, X, Y, eps=0.1, domain=None), "domain must be a (lo, hi) pair"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(SplinescopeError) as info:
        call()
    assert message in str(info.value)
