"""LC phases, delayed robustness and the chance rule on synthetic curves with known phases
(plus noise), and on curves without any."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splinescope.analysis.phenomena import (
    NOT_REACHED,
    delayed_robustness,
    detect_phenomena,
    lc_phases,
    smooth_log_steps,
)
from splinescope.errors import SplinescopeError

LOG = np.unique(np.round(np.logspace(0, 5, 60)).astype(np.int64))
STEPS = np.concatenate([[0], LOG])


def bump(x, centre, width):
    return np.exp(-0.5 * ((x - centre) / width) ** 2)


def three_phases(steps, first=5.0, trough=1.8, peak=5.6, final=0.4, t_end=25, t_peak=1000):
    """The paper's train-LC shape at init x1, piecewise in log10(1 + step): first -> trough at
    ``t_end`` -> peak at ``t_peak`` -> final from 10x t_peak on."""
    x = np.log10(1.0 + np.asarray(steps, dtype=np.float64))
    xe, xp = np.log10(1 + t_end), np.log10(1 + t_peak)
    xf = xp + 1.5
    return np.interp(x, [0, xe, xp, xf, 6], [first, trough, peak, final, final])


def test_smoothing_keeps_constants_and_lines_in_log_steps():
    assert np.allclose(smooth_log_steps(STEPS, np.full(STEPS.size, 3.0)), 3.0)
    assert np.array_equal(smooth_log_steps(STEPS, STEPS * 1.0, bandwidth=0), STEPS)
    with pytest.raises(SplinescopeError, match="bandwidth"):
        smooth_log_steps(STEPS, STEPS, bandwidth=-1)


def test_three_phases_are_found_at_their_steps():
    p = lc_phases(STEPS, three_phases(STEPS))
    assert p.first_descent_end_step is not None and 15 <= p.first_descent_end_step <= 40
    assert p.first_descent_depth == pytest.approx(1 - 1.8 / 5.0, abs=0.08)
    assert 600 <= p.ascent_peak_step <= 1600 and p.ascent_peak_value == pytest.approx(5.6, rel=0.1)
    assert 1000 < p.second_descent_onset_step < 30_000
    assert p.final_to_peak == pytest.approx(0.4 / 5.6, abs=0.03)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    noise=st.floats(0.0, 0.15),
    t_end=st.sampled_from([10, 25, 60]),
    t_peak=st.sampled_from([500, 1000, 3000]),
)
def test_three_phases_survive_noise(seed, noise, t_end, t_peak):
    clean = three_phases(STEPS, t_end=t_end, t_peak=t_peak)
    rng = np.random.default_rng(seed)
    noisy = clean * (1 + noise * rng.standard_normal(STEPS.size))
    p = lc_phases(STEPS, noisy)
    assert p.first_descent_end_step is not None
    assert t_end / 4 <= p.first_descent_end_step <= t_end * 4
    assert t_peak / 3 <= p.ascent_peak_step <= t_peak * 3
    assert (
        p.second_descent_onset_step is not None and p.second_descent_onset_step > p.ascent_peak_step
    )
    assert p.final_to_peak < 0.3


def test_no_first_descent_when_lc_rises_from_the_start():
    """Init x8: LC rises to its peak when the training set is fitted, then descends."""
    curve = three_phases(STEPS, first=6.2, trough=6.2, peak=17.3, final=4.9, t_end=1, t_peak=6000)
    p = lc_phases(STEPS, curve)
    assert p.first_descent_end_step is None and p.first_descent_depth is None
    assert 3000 <= p.ascent_peak_step <= 12_000
    assert p.second_descent_onset_step is not None


def test_a_curve_still_rising_has_no_second_descent():
    curve = three_phases(STEPS, t_peak=100_000)
    p = lc_phases(STEPS, curve)
    assert p.ascent_peak_step is not None and p.second_descent_onset_step is None


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), level=st.floats(0.5, 50), noise=st.floats(0.0, 0.03))
def test_flat_noisy_curves_have_no_phases(seed, level, noise):
    rng = np.random.default_rng(seed)
    p = lc_phases(STEPS, level * (1 + noise * rng.standard_normal(STEPS.size)))
    assert p.ascent_peak_step is None and p.first_descent_end_step is None
    assert p.second_descent_onset_step is None
    assert set(p.to_summary().values()) - {NOT_REACHED} == {p.first_value, p.final_value}


def test_monotone_curves_have_no_ascent():
    assert lc_phases(STEPS, np.linspace(10, 1, STEPS.size)).ascent_peak_step is None
    rising = lc_phases(STEPS, np.linspace(1, 10, STEPS.size))
    assert rising.ascent_peak_step == STEPS[-1] and rising.second_descent_onset_step is None


def robust_curve(steps, early=0.2, low=0.0, final=0.35, t_min=300, t_rise=12_000):
    x = np.log10(1.0 + np.asarray(steps, dtype=np.float64))
    return np.interp(
        x,
        [0, np.log10(30), np.log10(t_min), np.log10(t_rise), np.log10(6e4), 6],
        [0.1, early, low, low, final, final],
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), noise=st.floats(0.0, 0.02))
def test_delayed_robustness_is_found_after_interpolation(seed, noise):
    rng = np.random.default_rng(seed)
    acc = np.clip(robust_curve(STEPS) + noise * rng.standard_normal(STEPS.size), 0, 1)
    r = delayed_robustness(STEPS, acc, 100, n_classes=10)
    assert r.min_step is not None and 100 <= r.min_step <= 13_000
    assert r.min_value == pytest.approx(0.0, abs=0.05)
    assert 12_000 < r.rise_step < 60_000 and r.gain == pytest.approx(0.35, abs=0.05)


def test_no_robustness_at_chance_or_without_a_rise():
    at_chance = robust_curve(STEPS, final=0.15)  # rises, but to 0.15 < 0.1 + 0.1
    assert delayed_robustness(STEPS, at_chance, 100, n_classes=10).rise_step is None
    flat = np.full(STEPS.size, 0.4)
    assert delayed_robustness(STEPS, flat, 100, n_classes=10).rise_step is None
    assert delayed_robustness(STEPS, robust_curve(STEPS), None).min_step is None


def frame(curves):
    rows = [
        (int(s), probe, key, float(v))
        for (probe, key), values in curves.items()
        for s, v in zip(STEPS, values, strict=True)
    ]
    return pd.DataFrame(rows, columns=["step", "probe", "key", "value"])


def spec(kind_outputs):
    from splinescope.monitor.registry import kinds

    return {
        name: {"kind": kind, "outputs": kinds()[kind].build(options).outputs().to_dict()}
        for name, (kind, options) in kind_outputs.items()
    }


def test_detect_phenomena_reports_phases_per_point_set_and_budget():
    train = np.minimum(1.0, 0.1 + STEPS / 100)
    curves = {
        ("accuracy", "train_acc"): train,
        ("accuracy", "test_acc"): np.minimum(0.9, 0.1 + STEPS / 100),
        ("lc_r005", "train_total"): three_phases(STEPS),
        ("lc_r005", "test_total"): three_phases(STEPS, first=4.8, trough=2.0, peak=3.4),
        ("lc_r005", "random_total"): np.full(STEPS.size, 1.5),
        ("pgd", "pgd_linf_acc_eps0.1"): robust_curve(STEPS),
        ("pgd", "pgd_linf_acc_eps0.2"): robust_curve(STEPS, final=0.12),
    }
    probes = spec(
        {
            "accuracy": ("accuracy", {}),
            "lc_r005": ("lc", {"per_class": False}),
            "pgd": ("adversarial", {"eps": (0.1, 0.2)}),
        }
    )
    out = detect_phenomena(frame(curves), probes, n_classes=10)
    phases = out["lc_phases"]
    assert set(phases) == {"lc_r005/train_total", "lc_r005/test_total", "lc_r005/random_total"}
    assert phases["lc_r005/random_total"]["ascent_peak_step"] == NOT_REACHED
    assert phases["lc_r005/test_total"]["second_descent_onset_step"] != NOT_REACHED
    assert out["lc_ascent_peak_step"] == phases["lc_r005/train_total"]["ascent_peak_step"]
    assert isinstance(out["lc_first_descent_step"], int)
    robust = out["delayed_robustness"]
    assert robust["pgd/pgd_linf_acc_eps0.1"]["rise_step"] != NOT_REACHED
    assert robust["pgd/pgd_linf_acc_eps0.2"]["rise_step"] == NOT_REACHED  # 0.12: at chance
    assert all(k in out for k in ("rule_lc_ascent", "rule_chance", "rule_delayed_robustness"))
    import json

    json.dumps(out, allow_nan=False)  # storable as it is


def test_a_short_run_at_chance_announces_nothing():
    """The 300-step grok-digits symptom: test accuracy 0.14 and PGD accuracy 0 after
    the training set is fitted must not read as generalization or robustness."""
    steps = np.unique(np.round(np.logspace(0, np.log10(300), 40)).astype(np.int64))
    curves = {
        ("accuracy", "train_acc"): np.minimum(1.0, steps / 150),
        ("accuracy", "test_acc"): np.where(steps > 150, 0.14, 0.1 + 0.04 * steps / 150),
        ("adversarial", "pgd_linf_acc"): np.zeros(steps.size),
    }
    rows = [(int(s), p, k, float(v)) for (p, k), vs in curves.items() for s, v in zip(steps, vs)]
    out = detect_phenomena(
        pd.DataFrame(rows, columns=["step", "probe", "key", "value"]), n_classes=10
    )
    assert isinstance(out["interpolation_step"], int)
    assert out["generalization_step"] == NOT_REACHED
    assert out["robust_generalization_step"] == NOT_REACHED
    assert out["chance_level"] == pytest.approx(0.1) and out["chance_margin"] == 0.1
