"""Phenomena on synthetic curves with closed-form answers, and properties of the detectors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from splinescope.analysis.phenomena import (
    NOT_REACHED,
    final_plateau,
    generalization_step,
    grokking_gap,
    interpolation_step,
    lc_peak_and_descent,
    robust_generalization_step,
    robust_interpolation_step,
    robustness_gap,
)
from splinescope.analysis.phenomena import detect_phenomena as detect
from splinescope.errors import SplinescopeError


def sigmoid(t, t0, s):
    return 1.0 / (1.0 + np.exp(-(t - t0) / s))


DENSE = np.arange(0, 100_001)
LOG = np.unique(np.round(np.logspace(0, 5, 60)).astype(np.int64))  # the paper's schedule

# Train accuracy: sigma((t - 1000) / 50) >= 0.99  <=>  t >= 1000 + 50 ln 99 = 1229.76
T_INTERP = 1000 + 50 * math.log(99)
# Test accuracy: 0.9 sigma((t - 20000) / 1000), plateau 0.9; within 0.01 of it
# <=> sigma >= 0.89 / 0.9  <=>  t >= 20000 + 1000 ln 89 = 24488.6
T_GEN = 20000 + 1000 * math.log(89)
# ... and >= 0.5 (a user threshold)  <=>  sigma >= 5/9  <=>  t >= 20000 + 1000 ln 1.25
T_HALF = 20000 + 1000 * math.log(1.25)


def train_curve(t):
    return sigmoid(t, 1000, 50)


def held_out_curve(t):
    return 0.9 * sigmoid(t, 20000, 1000)


def lc_curve(t, peak=100.0, final=40.0, t_peak=5000, tau=3000.0):
    """Linear rise to ``peak`` at ``t_peak``, then exponential decay to ``final``."""
    t = np.asarray(t, dtype=np.float64)
    rise = peak * t / t_peak
    fall = final + (peak - final) * np.exp(-(t - t_peak) / tau)
    return np.where(t <= t_peak, rise, fall)


# Descent onset at a quarter of the drop: exp(-(t - 5000) / 3000) <= 3/4  <=>
# t >= 5000 + 3000 ln(4/3) = 5863.05
T_DESCENT = 5000 + 3000 * math.log(4 / 3)


def first_at_or_after(grid, t):
    return int(grid[np.searchsorted(grid, t)])


@pytest.mark.parametrize("grid", [DENSE, LOG], ids=["dense", "log-spaced"])
def test_closed_form_steps(grid):
    assert interpolation_step(grid, train_curve(grid)) == first_at_or_after(grid, T_INTERP)
    assert generalization_step(grid, held_out_curve(grid)) == first_at_or_after(grid, T_GEN)
    assert generalization_step(grid, held_out_curve(grid), threshold=0.5) == first_at_or_after(
        grid, T_HALF
    )
    found = lc_peak_and_descent(grid, lc_curve(grid))
    assert found.descent_step == first_at_or_after(grid, T_DESCENT)
    assert found.final_value == pytest.approx(40.0)
    if grid is DENSE:
        assert found.peak_step == 5000 and found.peak_value == 100.0
        assert found.level == pytest.approx(85.0)
    else:  # the peak is the logged point nearest to 5000 on the side with higher LC
        left, right = grid[grid <= 5000][-1], grid[grid > 5000][0]
        best = left if lc_curve(left) >= lc_curve(right) else right
        assert found.peak_step == best


def test_dense_closed_form_numbers():
    assert interpolation_step(DENSE, train_curve(DENSE)) == 1230
    assert generalization_step(DENSE, held_out_curve(DENSE)) == 24489
    assert generalization_step(DENSE, held_out_curve(DENSE), threshold=0.5) == 20224
    assert lc_peak_and_descent(DENSE, lc_curve(DENSE)).descent_step == 5864
    assert grokking_gap(1230, 24489) == pytest.approx(24489 / 1230)


def test_not_reached_cases():
    short = np.arange(0, 21_001)  # the run ends while test accuracy still climbs
    assert generalization_step(short, held_out_curve(short)) is None
    assert interpolation_step(DENSE, 0.95 * train_curve(DENSE)) is None
    assert generalization_step(DENSE, held_out_curve(DENSE), threshold=0.95) is None
    rising = lc_peak_and_descent(DENSE, np.log1p(DENSE))  # LC only rises
    assert rising.peak_step == 100_000 and rising.descent_step is None
    # A fall of less than min_relative_drop of the peak is not a descent.
    small = lc_curve(DENSE, peak=100.0, final=95.0)
    assert lc_peak_and_descent(DENSE, small).descent_step is None
    assert lc_peak_and_descent(DENSE, small, min_relative_drop=0.01).descent_step is not None
    assert grokking_gap(None, 5) is None and grokking_gap(5, None) is None
    assert grokking_gap(0, 5) is None
    assert interpolation_step([], []) is None and generalization_step([], []) is None
    assert lc_peak_and_descent([], []).peak_step is None


def test_order_and_nan_handling():
    steps = np.array([30, 10, 20, 40])
    acc = np.array([0.995, 0.2, np.nan, 1.0])
    assert interpolation_step(steps, acc) == 30
    assert interpolation_step([1, 2, 3], [0.5, 0.995, 0.2]) == 2  # first crossing
    assert generalization_step([1, 2, 3, 4, 5], [0.1, 0.7, 0.3, 0.71, 0.7]) == 4
    assert final_plateau([1.0, 5.0, 2.0, 3.0]) == 3.0  # median of the last three


def test_bad_input():
    with pytest.raises(SplinescopeError, match="fractions in \\[0, 1\\].*percentages"):
        interpolation_step([1, 2], [50.0, 99.5])
    with pytest.raises(SplinescopeError, match="equal length"):
        generalization_step([1, 2, 3], [0.1, 0.2])
    with pytest.raises(SplinescopeError, match="step 2 appears twice"):
        lc_peak_and_descent([1, 2, 2], [1.0, 2.0, 3.0])
    with pytest.raises(SplinescopeError, match="steps must be integers"):
        interpolation_step([1.5, 2.0], [0.1, 0.2])
    with pytest.raises(SplinescopeError, match="threshold must be in"):
        interpolation_step([1], [0.1], threshold=99)
    with pytest.raises(SplinescopeError, match="descent_fraction must be in"):
        lc_peak_and_descent([1], [1.0], descent_fraction=0)
    with pytest.raises(SplinescopeError, match="lacks column"):
        detect(pd.DataFrame({"step": [1], "value": [1.0]}))


# -- detect_phenomena -------------------------------------------------------------------


def long_frame(grid, curves):
    """The frame load_metrics returns, from {(probe, key): values}."""
    rows = [
        (int(s), probe, key, float(v))
        for (probe, key), values in curves.items()
        for s, v in zip(grid, values, strict=True)
    ]
    return pd.DataFrame(rows, columns=["step", "probe", "key", "value"])


def test_detect_phenomena_on_a_grokking_run():
    grid = LOG
    adv_test = 0.6 * sigmoid(grid, 40_000, 2000)  # robustness settles after 40k
    frame = long_frame(
        grid,
        {
            ("accuracy", "train_acc"): train_curve(grid),
            ("accuracy", "test_acc"): held_out_curve(grid),
            ("accuracy", "train_loss"): 1 - train_curve(grid),
            ("adversarial", "fgsm_linf_acc"): np.zeros(len(grid)),
            ("adversarial", "pgd_linf_acc"): adv_test,
            ("adversarial", "train_pgd_linf_acc"): 0.5 * train_curve(grid),
            ("lc", "train_total"): lc_curve(grid),
            ("lc", "test_total"): lc_curve(grid)[::-1],
        },
    )
    out = detect(frame)
    interp, gen = first_at_or_after(grid, T_INTERP), first_at_or_after(grid, T_GEN)
    # 0.6 sigma >= 0.59  <=>  t >= 40000 + 2000 ln 59
    r_gen = first_at_or_after(grid, 40_000 + 2000 * math.log(59))
    assert out["interpolation_step"] == interp
    assert out["generalization_step"] == gen
    assert out["grokking_gap"] == pytest.approx(gen / interp)
    assert out["robust_interpolation_step"] == NOT_REACHED  # 0.5 < 0.99
    assert out["robust_generalization_step"] == r_gen
    assert out["robustness_gap"] == pytest.approx(r_gen / interp)
    assert out["lc_descent_step"] == first_at_or_after(grid, T_DESCENT)
    assert out["adversarial_key"] == "adversarial/pgd_linf_acc"  # preferred over fgsm
    assert out["interpolation_threshold"] == 0.99 and out["generalization_tolerance"] == 0.01
    assert out["test_plateau"] == pytest.approx(0.9) and out["lc_key"] == "lc/train_total"
    assert out["lc_descent_fraction"] == 0.25 and out["lc_peak_value"] == pytest.approx(
        lc_curve(out["lc_peak_step"])
    )
    steps = [v for k, v in out.items() if k.endswith("_step") and v != NOT_REACHED]
    assert all(isinstance(v, int) for v in steps)

    user = detect(frame, test_threshold=0.5, robust_threshold=0.3, adversarial_key="fgsm_linf_acc")
    assert user["generalization_step"] == first_at_or_after(grid, T_HALF)
    assert "generalization_tolerance" not in user and user["generalization_threshold"] == 0.5
    assert user["robust_generalization_step"] == NOT_REACHED  # fgsm accuracy stays 0
    assert "robust_interpolation_step" not in user  # no train_fgsm_linf_acc logged
    with pytest.raises(SplinescopeError, match="adversarial_key 'cw_acc' was not logged"):
        detect(frame, adversarial_key="cw_acc")


def test_detect_phenomena_reports_not_reached_and_omits_unlogged_curves():
    grid = np.arange(1, 2001)
    frame = long_frame(
        grid,
        {("accuracy", "train_acc"): np.full(2000, 0.5), ("accuracy", "test_acc"): grid / 2000},
    )
    out = detect(frame)
    assert out["interpolation_step"] == NOT_REACHED
    assert out["generalization_step"] == NOT_REACHED  # still rising at the end
    assert out["grokking_gap"] == NOT_REACHED
    absent = ("robust_generalization_step", "robustness_gap", "lc_peak_step", "lc_descent_step")
    assert not any(k in out for k in absent)
    assert detect(long_frame(grid, {})) == {}


def test_detect_phenomena_reads_a_stored_run(tmp_path):
    from splinescope.store import RunStore, load_metrics

    store = RunStore(tmp_path)
    rid = store.create_run("synthetic", {})
    with store.batch():
        for s in LOG:
            store.log_scalars(
                rid, s, "accuracy", {"train_acc": train_curve(s), "test_acc": held_out_curve(s)}
            )
            store.log_scalars(rid, s, "lc", {"train_total": lc_curve(s)})
    frame = long_frame(
        LOG,
        {
            ("accuracy", "train_acc"): train_curve(LOG),
            ("accuracy", "test_acc"): held_out_curve(LOG),
            ("lc", "train_total"): lc_curve(LOG),
        },
    )
    summary = detect(load_metrics(tmp_path, rid))
    assert summary == detect(frame)
    store.set_summary(rid, summary)  # JSON-able as it is


# -- properties -------------------------------------------------------------------------

accuracies = st.lists(
    st.floats(0.0, 1.0, allow_nan=False).map(lambda x: round(x, 3)), min_size=1, max_size=40
)


@st.composite
def curve(draw, values=accuracies):
    v = draw(values)
    gaps = draw(st.lists(st.integers(1, 1000), min_size=len(v), max_size=len(v)))
    start = draw(st.integers(0, 10_000))
    return start + np.cumsum(gaps) - gaps[0], np.array(v)


def naive_generalization(steps, v, tol):
    """Brute force over candidate starts: the first i from which on every value (and the
    last one in particular) is within tol of the plateau (values of the last 10 % of steps)."""
    window = sum(1 for t in steps if t >= steps[-1] - 0.1 * (steps[-1] - steps[0]))
    k = min(len(v), max(3, window))
    plateau = sorted(v[-k:])[k // 2] if k % 2 else sum(sorted(v[-k:])[k // 2 - 1 : k // 2 + 1]) / 2
    for i in range(len(v)):
        if all(abs(x - plateau) <= tol + 1e-9 for x in v[i:]):
            return int(steps[i])
    return None


@settings(max_examples=150, deadline=None)
@given(c=curve(), tol=st.sampled_from([0.0, 0.01, 0.05]), thr=st.sampled_from([0.5, 0.9, 0.99]))
def test_against_brute_force(c, tol, thr):
    steps, v = c
    assert generalization_step(steps, v, tol) == naive_generalization(steps, v, tol)
    naive_interp = next((int(s) for s, x in zip(steps, v, strict=True) if x >= thr), None)
    assert interpolation_step(steps, v, thr) == naive_interp
    assert generalization_step(steps, v, threshold=thr) == naive_interp
    assert robust_interpolation_step(steps, v, thr) == naive_interp
    assert robust_generalization_step(steps, v, tol) == generalization_step(steps, v, tol)


@settings(max_examples=100, deadline=None)
@given(c=curve())
def test_a_higher_threshold_is_reached_later_or_never(c):
    steps, v = c
    found = [interpolation_step(steps, v, thr) for thr in (0.2, 0.5, 0.8, 0.99, 1.0)]
    as_num = [math.inf if s is None else s for s in found]
    assert as_num == sorted(as_num)


@settings(max_examples=150, deadline=None)
@given(c=curve(), shift=st.integers(-5000, 5000), scale=st.integers(1, 7))
def test_steps_shift_and_scale(c, shift, scale):
    steps, v = c
    lc = 50 * v

    def shifted(f, *args, **kw):
        r = f(steps, *args, **kw)
        moved = f(steps * scale + shift, *args, **kw)
        return r, moved

    for f, args in (
        (interpolation_step, (v,)),
        (generalization_step, (v,)),
        (lambda s, x: lc_peak_and_descent(s, x).peak_step, (lc,)),
        (lambda s, x: lc_peak_and_descent(s, x).descent_step, (lc,)),
    ):
        r, moved = shifted(f, *args)
        assert moved == (None if r is None else r * scale + shift)
    # The gap is a ratio of steps: unchanged when steps are scaled.
    i, g = interpolation_step(steps, v, 0.5), generalization_step(steps, v)
    assume(i is not None and g is not None and i > 0)
    i2 = interpolation_step(steps * scale, v, 0.5)
    g2 = generalization_step(steps * scale, v)
    assert grokking_gap(i2, g2) == pytest.approx(grokking_gap(i, g))
    assert robustness_gap(i, g) == grokking_gap(i, g)


@settings(max_examples=150, deadline=None)
@given(c=curve(), tol=st.sampled_from([0.01, 0.05]))
def test_monotone_curves(c, tol):
    steps, v = c
    v = np.sort(v)  # a nondecreasing accuracy curve
    for thr in (0.3, 0.6, 0.99):
        s = interpolation_step(steps, v, thr)
        assert s is None or (v[steps >= s] >= thr).all() and (v[steps < s] < thr).all()
    # Nondecreasing: the generalization step, if reached, is the first step within tol
    # below the plateau (nothing later can leave the band from above).
    g = generalization_step(steps, v, tol)
    plateau = final_plateau(v, steps=steps)
    if v[-1] - plateau > tol + 1e-9:
        assert g is None
    else:
        assert g == int(steps[np.flatnonzero(v >= plateau - tol - 1e-9)[0]])
    # LC rising then falling: the peak is the top, the descent the first point past the level.
    lc = np.concatenate([v, v[::-1][1:]]) * 100
    lc_steps = np.arange(len(lc)) * 10
    found = lc_peak_and_descent(lc_steps, lc)
    assert found.peak_value == lc.max() and found.peak_step == 10 * int(np.argmax(lc))
    if found.descent_step is not None:
        after = lc_steps > found.peak_step
        first = lc_steps[after][np.flatnonzero(lc[after] <= found.level)[0]]
        assert found.descent_step == first


def test_a_curve_that_never_improves_settles_at_once_and_says_at_what_level():
    grid = np.arange(1, 501)
    frame = long_frame(
        grid,
        {
            ("accuracy", "train_acc"): np.minimum(1.0, grid / 100),
            ("accuracy", "test_acc"): np.full(500, 0.1),  # chance level throughout
        },
    )
    out = detect(frame)
    assert out["interpolation_step"] == 99  # 99/100 >= 0.99
    # at chance (the first logged value, or 1/10): never announced
    assert out["generalization_step"] == NOT_REACHED and out["grokking_gap"] == NOT_REACHED
    assert out["test_plateau"] == pytest.approx(0.1)
    assert detect(frame, n_classes=10)["generalization_step"] == NOT_REACHED
    # the same flat curve well above chance settles at once
    flat = frame.assign(value=np.where(frame["key"] == "test_acc", 0.5, frame["value"]))
    above = detect(flat, n_classes=10)
    assert above["generalization_step"] == 1 and above["grokking_gap"] == pytest.approx(1 / 99)
    assert grokking_gap(0, 7) is None
    zero = long_frame(
        np.arange(0, 3),
        {("accuracy", "train_acc"): [1.0, 1.0, 1.0], ("accuracy", "test_acc"): [0.5, 0.9, 0.9]},
    )
    assert detect(zero)["grokking_gap"] == "undefined"  # fitted at step 0: no ratio
