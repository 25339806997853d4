"""Each shipped probe against an independent computation of the same quantity."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from splinescope.errors import SplinescopeError
from splinescope.geometry.complexity import local_complexity
from splinescope.monitor import (
    AccuracyProbe,
    AdversarialProbe,
    LocalComplexityProbe,
    UnitActivityProbe,
    WeightNormProbe,
)
from splinescope.monitor.probe import subset
from splinescope.nn.evaluation import evaluate
from splinescope.nn.weights import weight_norms
from splinescope.robustness import adversarial_accuracy


def test_accuracy_probe_keys_and_values(model, context):
    result = AccuracyProbe().compute(model, context)
    assert set(result.scalars) == {"train_loss", "train_acc", "test_loss", "test_acc"}
    assert (
        result.scalars["test_acc"]
        == evaluate(model, context.x_test, context.y_test, context.loss_fn).accuracy
    )


def test_weight_norm_probe_keys_are_the_measure(model, context):
    norms = weight_norms(model)
    result = WeightNormProbe().compute(model, context)
    assert result.scalars["total_norm"] == norms.total
    assert result.scalars["norm/2"] == norms.per_module["2"]


def test_unit_activity_probe_keys(model, context):
    result = UnitActivityProbe().compute(model, context)
    assert {"dead_frac", "always_on_frac"} <= set(result.scalars)
    assert any(k.startswith("dead/") for k in result.scalars)


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
    probe = AdversarialProbe(attack="fgsm", eps=(0.1,), n_points=None)
    result = probe.compute(model, context)
    adv = _naive_fgsm(model, context.x_test, context.y_test, 0.1, 0.0, 1.0)
    with torch.no_grad():
        expected = float((model(adv).argmax(1) == context.y_test).double().mean())
    assert result.scalars == {"fgsm_linf_acc": pytest.approx(expected, abs=1e-12)}


def test_pgd_accuracy_is_at_most_clean_and_fgsm_and_respects_the_domain(model, context):
    def run(**kw):
        probe = AdversarialProbe(splits=("test", "train"), n_points=None, **kw)
        return probe.compute(model, context).scalars

    fgsm = run(attack="fgsm", eps=(0.1,))
    pgd = run(attack="pgd", eps=(0.1,), steps=10)
    l2 = run(attack="pgd", norm="l2", eps=(0.3,), steps=5)
    assert set(fgsm) == {"fgsm_linf_acc", "train_fgsm_linf_acc"}
    assert set(pgd) == {"pgd_linf_acc", "train_pgd_linf_acc"}
    assert set(l2) == {"pgd_l2_acc", "train_pgd_l2_acc"}
    clean = AccuracyProbe().compute(model, context).scalars
    assert pgd["pgd_linf_acc"] <= fgsm["fgsm_linf_acc"] + 0.05
    assert pgd["pgd_linf_acc"] <= clean["test_acc"]
    assert pgd["train_pgd_linf_acc"] <= clean["train_acc"]


def test_several_budgets_in_one_probe_equal_one_probe_each(model, context):
    both = AdversarialProbe(eps=(0.05, 0.2), steps=3, n_points=None).compute(model, context)
    assert set(both.scalars) == {"pgd_linf_acc_eps0.05", "pgd_linf_acc_eps0.2"}
    for eps in (0.05, 0.2):
        alone = AdversarialProbe(eps=(eps,), steps=3, n_points=None).compute(model, context)
        assert both.scalars[f"pgd_linf_acc_eps{eps:g}"] == alone.scalars["pgd_linf_acc"]
    assert both.scalars["pgd_linf_acc_eps0.2"] <= both.scalars["pgd_linf_acc_eps0.05"]


@pytest.mark.parametrize("batch_size", [1, 7, 80])
def test_adversarial_probe_does_not_depend_on_the_batch_size(model, context, batch_size):
    whole = AdversarialProbe(eps=(0.1,), steps=4, n_points=None).compute(model, context)
    chunked = AdversarialProbe(eps=(0.1,), steps=4, n_points=None, batch_size=batch_size)
    assert chunked.compute(model, context).scalars == whole.scalars


def test_adversarial_probe_is_the_robustness_measure(model, context):
    probe = AdversarialProbe(eps=(0.1,), steps=4, n_points=None, seed=3)
    expected = adversarial_accuracy(
        model,
        context.x_test,
        context.y_test,
        attack="pgd",
        eps=0.1,
        step_size=0.0625,
        steps=4,
        norm="linf",
        domain=(0.0, 1.0),
        random_start=True,
        seed=3,
    )
    assert probe.compute(model, context).scalars["pgd_linf_acc"] == expected


def test_adversarial_probe_validation():
    with pytest.raises(SplinescopeError, match="eps"):
        AdversarialProbe(eps=(0.0,))
    with pytest.raises(SplinescopeError, match="eps"):
        AdversarialProbe(eps=(0.1, 0.1))
    with pytest.raises(SplinescopeError, match="steps"):
        AdversarialProbe(steps=0)
    with pytest.raises(SplinescopeError, match="splits"):
        AdversarialProbe(splits=())
