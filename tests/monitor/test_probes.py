"""Each shipped probe against an independent computation of the same quantity."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from monitor_helpers import blobs, tiny_mlp
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.geometry.complexity import local_complexity
from splinescope.monitor import (
    AccuracyProbe,
    AdversarialProbe,
    AttackSpec,
    LocalComplexityProbe,
    UnitActivityProbe,
    WeightNormProbe,
    evaluate,
    unit_activity,
    weight_norms,
)
from splinescope.monitor.probe import subset
from splinescope.train import mse_onehot


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 90), st.sampled_from(["mse", "ce"]))
def test_evaluate_equals_one_full_batch_computation(batch_size, loss):
    model = tiny_mlp(seed=batch_size)
    x, y = blobs(83, seed=batch_size)
    loss_fn = mse_onehot if loss == "mse" else F.cross_entropy
    got_loss, got_acc = evaluate(model, x, y, loss_fn, batch_size=batch_size)
    with torch.no_grad():
        logits = model(x)
    assert math.isclose(got_loss, float(loss_fn(logits, y)), rel_tol=1e-5)
    assert got_acc == float((logits.argmax(1) == y).double().mean())


def test_accuracy_probe_keys_and_values(model, context):
    result = AccuracyProbe().compute(model, context)
    assert set(result.scalars) == {"train_loss", "train_acc", "test_loss", "test_acc"}
    _, acc = evaluate(model, context.x_test, context.y_test, context.loss_fn)
    assert result.scalars["test_acc"] == acc


def test_weight_norms_equal_the_norm_of_each_layers_flattened_parameters(model, context):
    norms = weight_norms(model)
    layers = [m for m in model if isinstance(m, nn.Linear)]
    assert list(norms) == ["0", "2", "4"]
    for name, layer in zip(norms, layers):
        flat = torch.cat([layer.weight.flatten(), layer.bias.flatten()]).detach().double()
        assert math.isclose(norms[name], float(torch.linalg.vector_norm(flat)), rel_tol=1e-12)
    result = WeightNormProbe().compute(model, context)
    everything = torch.cat([p.detach().flatten() for p in model.parameters()]).double()
    assert math.isclose(result.scalars["total_norm"], float(everything.norm()), rel_tol=1e-12)
    assert result.scalars["norm/2"] == norms["2"]


def test_weight_norms_name_root_parameters():
    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor([3.0, 4.0]))

    assert weight_norms(Bare()) == {"(root)": 5.0}


def test_unit_activity_against_explicit_preactivations():
    model = tiny_mlp(width=12, seed=3)
    with torch.no_grad():
        model[0].bias[:3] = -100.0  # dead in layer 1
        model[0].bias[3:5] = 100.0  # always on in layer 1
        model[2].bias[:2] = 100.0  # always on in layer 2
    x, _ = blobs(60)
    with torch.no_grad():
        h1 = model[0](x)
        h2 = model[2](torch.relu(h1))
    dead = int((h1 <= 0).all(0).sum() + (h2 <= 0).all(0).sum())
    on = int((h1 > 0).all(0).sum() + (h2 > 0).all(0).sum())
    activity = unit_activity(model, x, batch_size=7)
    assert activity.n_units == 24
    assert activity.dead_frac == dead / 24 and dead >= 3
    assert activity.always_on_frac == on / 24 and on >= 4
    layer1_dead, layer1_on = next(iter(activity.per_layer.values()))
    assert layer1_dead == int((h1 <= 0).all(0).sum()) / 12
    assert layer1_on == int((h1 > 0).all(0).sum()) / 12


def test_unit_activity_probe_keys(model, context):
    result = UnitActivityProbe().compute(model, context)
    assert {"dead_frac", "always_on_frac"} <= set(result.scalars)
    assert any(k.startswith("dead/") for k in result.scalars)


def test_unit_activity_needs_hinge_units():
    with pytest.raises(SplinescopeError, match="hinge"):
        unit_activity(nn.Sequential(nn.Linear(3, 3), nn.MaxPool1d(1)), torch.rand(4, 1, 3))


def test_lc_probe_equals_direct_local_complexity_and_per_class_means(model, context):
    probe = LocalComplexityProbe(radius=0.2, n_vertices=8, n_points=70, seed=5)
    result = probe.compute(model, context)
    x, y = subset(context.x_train, context.y_train, 70, seed=5)
    direct = local_complexity(model, x, radius=0.2, n_vertices=8, seed=5)
    assert result.scalars["train_total"] == direct.mean_total
    assert np.array_equal(result.arrays["train_counts"], direct.counts.numpy())
    for name, value in direct.mean_per_layer.items():
        assert result.scalars[f"train/{name}"] == value
    totals = direct.counts.sum(1).double()
    for c in range(3):
        assert math.isclose(result.scalars[f"class_{c}_total"], float(totals[y == c].mean()))
    # random points: all 50 of them (fewer than n_points)
    rnd = local_complexity(model, context.x_random, radius=0.2, n_vertices=8, seed=5)
    assert result.scalars["random_total"] == rnd.mean_total
    assert result.arrays["random_counts"].shape == (50, 2)


def test_lc_probe_measures_the_same_neighbourhoods_every_time(model, context):
    probe = LocalComplexityProbe(radius=0.2, n_vertices=8, n_points=40)
    first = probe.compute(model, context)
    torch.rand(10)  # the global RNG moves between steps of a training run
    second = probe.compute(model, context)
    assert first.scalars == second.scalars


def test_lc_probe_rejects_bad_splits():
    with pytest.raises(SplinescopeError, match="splits"):
        LocalComplexityProbe(radius=0.1, splits=("validation",))
    with pytest.raises(SplinescopeError, match="per_class"):
        LocalComplexityProbe(radius=0.1, splits=("test",))


def _naive_fgsm(model, x, y, eps, lo, hi):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).clamp(lo, hi).detach()


def test_fgsm_accuracy_equals_a_naive_fgsm(model, context):
    probe = AdversarialProbe(attacks=(AttackSpec("fgsm", "linf", eps=0.1),), n_points=None)
    result = probe.compute(model, context)
    adv = _naive_fgsm(model, context.x_test, context.y_test, 0.1, 0.0, 1.0)
    with torch.no_grad():
        expected = float((model(adv).argmax(1) == context.y_test).double().mean())
    assert result.scalars == {"fgsm_linf_acc": pytest.approx(expected, abs=1e-12)}


def test_pgd_accuracy_is_at_most_clean_and_fgsm_and_respects_the_domain(model, context):
    attacks = (
        AttackSpec("fgsm", "linf", eps=0.1),
        AttackSpec("pgd", "linf", eps=0.1, steps=10),
        AttackSpec("pgd", "l2", eps=0.3, steps=5),
    )
    result = AdversarialProbe(attacks=attacks, splits=("test", "train"), n_points=None).compute(
        model, context
    )
    clean = AccuracyProbe().compute(model, context).scalars
    s = result.scalars
    assert set(s) == {
        "fgsm_linf_acc",
        "pgd_linf_acc",
        "pgd_l2_acc",
        "train_fgsm_linf_acc",
        "train_pgd_linf_acc",
        "train_pgd_l2_acc",
    }
    assert s["pgd_linf_acc"] <= s["fgsm_linf_acc"] + 0.05
    assert s["pgd_linf_acc"] <= clean["test_acc"] and s["train_pgd_linf_acc"] <= clean["train_acc"]


def test_attack_spec_validation():
    with pytest.raises(SplinescopeError, match="attack"):
        AttackSpec("cw")
    with pytest.raises(SplinescopeError, match="norm"):
        AttackSpec("pgd", "l1")
    with pytest.raises(SplinescopeError, match="eps"):
        AttackSpec("pgd", eps=0.0)
    with pytest.raises(SplinescopeError, match="FGSM"):
        AttackSpec("fgsm", "l2")
    with pytest.raises(SplinescopeError, match="share a key"):
        AdversarialProbe(attacks=(AttackSpec(), AttackSpec(eps=0.2)))
