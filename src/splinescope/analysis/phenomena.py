"""Phenomena of a training run, detected on its stored curves: interpolation, (delayed)
generalization and robustness, and the rise and fall of local complexity.

Pure functions over ``(steps, values)``: ``steps`` are the logged training steps (integers,
any order, no repeats), ``values`` the curve at those steps; NaN values (failed or missing
measurements) are dropped first. A phenomenon that does not occur in the logged curve is
``None`` here and ``"not reached"`` in the summary of :func:`detect_phenomena`.

The definitions, once for all functions:

* **interpolation step** -- the first logged step at which train accuracy is at least
  ``threshold`` (0.99). First crossing: a later dip below does not move it.
* **final plateau** -- the median of the values logged in the last 10 % of the run's steps
  (at least the last 3 values): with log-spaced logging that is the last few points, so a
  curve that creeps up slowly for a long time is judged by where it ends; the median ignores
  a single outlier. (Without steps: the last ``max(3, ceil(10 % of the points))`` values.)
* **generalization step** -- the first logged step from which on test accuracy stays within
  ``tolerance`` (0.01, one accuracy point; 1e-9 of slack for float rounding) of its final
  plateau; "not reached" when the last
  logged value is itself more than ``tolerance`` from the plateau (the curve has not
  settled). With a user ``threshold`` instead: the first logged step at which test accuracy
  is at least ``threshold``. Note that a curve that never improves has a plateau too (its
  generalization step is then early); :func:`detect_phenomena` reports the plateau value so
  that this can be seen.
* **grokking gap** -- generalization step / interpolation step (a ratio; > 1 means test
  accuracy settled later than the training set was fitted).
* **delayed robustness** -- the same two steps on adversarial accuracy: robust interpolation
  on adversarial accuracy of training points, robust generalization on adversarial accuracy
  of test points; the **robustness gap** is robust generalization step / (clean)
  interpolation step, i.e. how long after fitting the training set robustness settles.
* **LC peak and descent** -- the peak is the first logged step where local complexity is
  largest. With ``final`` the final plateau of the LC curve and ``drop = peak - final``, the
  descent onset is the first logged step after the peak where LC is at most
  ``peak - descent_fraction * drop`` (default: a quarter of the way down); "not reached"
  when ``drop`` is smaller than ``min_relative_drop`` (0.1) of the peak value (LC did not
  really fall) or no later point is that low.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from splinescope.errors import SplinescopeError

NOT_REACHED = "not reached"
UNDEFINED = "undefined"

#: Adversarial accuracy keys preferred when several attacks were logged, best first.
ADVERSARIAL_PREFERENCE = ("pgd_linf_acc", "pgd_l2_acc", "fgsm_linf_acc", "fgsm_l2_acc")

PLATEAU_FRACTION = 0.1
#: Slack of "within tolerance" for float rounding: 0.71 - 0.70 is 0.010000000000000009.
ROUNDING_SLACK = 1e-9
MIN_PLATEAU_POINTS = 3


def _series(steps: Any, values: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps (int64, ascending) and values (float64) without NaN values."""
    s = np.asarray(steps)
    v = np.asarray(values, dtype=np.float64)
    if s.ndim != 1 or v.ndim != 1 or s.shape != v.shape:
        raise SplinescopeError(
            f"{what}: steps and values must be 1-D of equal length, got shapes "
            f"{s.shape} and {v.shape}"
        )
    if s.size and not np.issubdtype(s.dtype, np.integer):
        sf = s.astype(np.float64)
        if not np.all(np.isfinite(sf)) or not np.all(sf == np.round(sf)):
            raise SplinescopeError(f"{what}: steps must be integers, got {s[:5]!r}...")
        s = sf
    s = s.astype(np.int64)
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    if s.size > 1 and np.any(np.diff(s) == 0):
        dup = s[1:][np.diff(s) == 0][0]
        raise SplinescopeError(f"{what}: step {int(dup)} appears twice")
    keep = ~np.isnan(v)
    return s[keep], v[keep]


def _accuracies(steps: Any, values: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    s, v = _series(steps, values, what)
    if v.size and (v.min() < 0.0 or v.max() > 1.0):
        raise SplinescopeError(
            f"{what}: accuracies must be fractions in [0, 1], got values in "
            f"[{v.min():g}, {v.max():g}] (percentages?)"
        )
    return s, v


def _fraction(value: float, name: str, low_open: bool = True) -> float:
    value = float(value)
    if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise SplinescopeError(f"{name} must be in {interval}, got {value}")
    return value


def final_plateau(
    values: Any,
    plateau_fraction: float = PLATEAU_FRACTION,
    min_points: int = MIN_PLATEAU_POINTS,
    *,
    steps: Any = None,
) -> float:
    """The curve's final level: the median of the values logged in the last
    ``plateau_fraction`` of the step range (at least the last ``min_points``) when ``steps``
    are given; else of the last ``max(min_points, ceil(fraction * n))`` values. NaN for an
    empty curve."""
    v = np.asarray(values, dtype=np.float64)
    _fraction(plateau_fraction, "plateau_fraction")
    if steps is not None:
        s = np.asarray(steps, dtype=np.float64)
        keep = ~np.isnan(v)
        order = np.argsort(s[keep], kind="stable")
        s, v = s[keep][order], v[keep][order]
        if v.size == 0:
            return math.nan
        in_window = int(np.count_nonzero(s >= s[-1] - plateau_fraction * (s[-1] - s[0])))
        k = min(v.size, max(int(min_points), in_window))
        return float(np.median(v[-k:]))
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan
    k = min(v.size, max(int(min_points), math.ceil(plateau_fraction * v.size)))
    return float(np.median(v[-k:]))


def _first_at_least(s: np.ndarray, v: np.ndarray, threshold: float) -> int | None:
    hit = np.flatnonzero(v >= threshold)
    return int(s[hit[0]]) if hit.size else None


def interpolation_step(steps: Any, train_acc: Any, threshold: float = 0.99) -> int | None:
    """First logged step with train accuracy >= ``threshold``; None if never.

    ``train_acc`` holds fractions in [0, 1], one per step.
    """
    threshold = _fraction(threshold, "threshold")
    s, v = _accuracies(steps, train_acc, "interpolation_step")
    return _first_at_least(s, v, threshold)


def generalization_step(
    steps: Any,
    test_acc: Any,
    tolerance: float = 0.01,
    threshold: float | None = None,
    *,
    plateau_fraction: float = PLATEAU_FRACTION,
) -> int | None:
    """First logged step from which on test accuracy stays within ``tolerance`` of its final
    plateau (module docstring), or, if ``threshold`` is given, the first logged step with
    test accuracy >= ``threshold``. None if not reached."""
    s, v = _accuracies(steps, test_acc, "generalization_step")
    if threshold is not None:
        return _first_at_least(s, v, _fraction(threshold, "threshold"))
    tolerance = float(tolerance)
    if not tolerance >= 0.0:
        raise SplinescopeError(f"tolerance must be >= 0, got {tolerance}")
    if v.size == 0:
        return None
    plateau = final_plateau(v, plateau_fraction, steps=s)
    outside = np.flatnonzero(np.abs(v - plateau) > tolerance + ROUNDING_SLACK)
    if outside.size == 0:
        return int(s[0])
    if outside[-1] == v.size - 1:
        return None  # the last value is off the plateau: the curve has not settled
    return int(s[outside[-1] + 1])


def grokking_gap(interpolation: int | None, generalization: int | None) -> float | None:
    """generalization / interpolation (a ratio of steps); None if either is None or the
    interpolation step is <= 0 (no ratio to step 0)."""
    if interpolation is None or generalization is None or interpolation <= 0:
        return None
    return float(generalization) / float(interpolation)


def robust_interpolation_step(
    steps: Any, train_adv_acc: Any, threshold: float = 0.99
) -> int | None:
    """:func:`interpolation_step` on adversarial accuracy of training points."""
    return interpolation_step(steps, train_adv_acc, threshold)


def robust_generalization_step(
    steps: Any,
    test_adv_acc: Any,
    tolerance: float = 0.01,
    threshold: float | None = None,
    *,
    plateau_fraction: float = PLATEAU_FRACTION,
) -> int | None:
    """:func:`generalization_step` on adversarial accuracy of test points."""
    return generalization_step(
        steps, test_adv_acc, tolerance, threshold, plateau_fraction=plateau_fraction
    )


def robustness_gap(interpolation: int | None, robust_generalization: int | None) -> float | None:
    """robust generalization step / (clean) interpolation step; None as in grokking_gap."""
    return grokking_gap(interpolation, robust_generalization)


@dataclass(frozen=True)
class LCDescent:
    """Peak and descent onset of a local-complexity curve (definitions: module docstring).

    ``peak_step``/``descent_step`` are logged steps (``descent_step`` None if not reached);
    ``level`` is the LC value that marks the onset, ``peak - descent_fraction * (peak -
    final)``; values are in the curve's own units (mean count of cut neurons).
    """

    peak_step: int | None
    peak_value: float
    final_value: float
    level: float
    descent_step: int | None
    descent_fraction: float
    min_relative_drop: float


def lc_peak_and_descent(
    steps: Any,
    lc: Any,
    descent_fraction: float = 0.25,
    *,
    min_relative_drop: float = 0.1,
    plateau_fraction: float = PLATEAU_FRACTION,
) -> LCDescent:
    """Peak of an LC curve and the onset of its descent (module docstring)."""
    descent_fraction = _fraction(descent_fraction, "descent_fraction")
    min_relative_drop = _fraction(min_relative_drop, "min_relative_drop", low_open=False)
    s, v = _series(steps, lc, "lc_peak_and_descent")
    if v.size == 0:
        return LCDescent(
            None, math.nan, math.nan, math.nan, None, descent_fraction, min_relative_drop
        )
    p = int(np.argmax(v))
    peak, final = float(v[p]), final_plateau(v, plateau_fraction, steps=s)
    drop = peak - final
    level = peak - descent_fraction * drop
    descent = None
    if drop > 0 and drop >= min_relative_drop * abs(peak):
        below = np.flatnonzero(v[p + 1 :] <= level)
        if below.size:
            descent = int(s[p + 1 + below[0]])
    return LCDescent(int(s[p]), peak, final, level, descent, descent_fraction, min_relative_drop)


# -- the run summary --------------------------------------------------------------------


def _or_not_reached(value: int | float | None) -> int | float | str:
    return NOT_REACHED if value is None else value


def _gap(first: int | None, second: int | None) -> float | str:
    if first is None or second is None:
        return NOT_REACHED
    gap = grokking_gap(first, second)
    return UNDEFINED if gap is None else gap


Curve = tuple[str, str]  # (probe, key)

#: Roles of the curves analysis reads, as probes declare them (ScalarKey.role).
ROLES = (
    "train_accuracy",
    "test_accuracy",
    "train_adversarial_accuracy",
    "test_adversarial_accuracy",
    "train_lc",
)


def _legacy_role(probe: str, key: str) -> str | None:
    """Roles of runs stored before probes declared their outputs (fixed probe names)."""
    if probe == "accuracy" and key in ("train_acc", "test_acc"):
        return key.replace("_acc", "_accuracy")
    if probe == "adversarial" and key.endswith("_acc"):
        return (
            "train_adversarial_accuracy"
            if key.startswith("train_")
            else ("test_adversarial_accuracy")
        )
    if probe == "lc" and key == "train_total":
        return "train_lc"
    return None


def curves_by_role(
    metrics: pd.DataFrame, probes: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, list[Curve]]:
    """``{role: [(probe, key), ...]}`` of the logged curves, in logging order.

    ``probes`` are the run's probe specs (:func:`splinescope.store.load_probes`): a key's role
    is the one its declared family names. Without specs (runs stored before probes declared
    their outputs) the built-in probes' names and keys are read.
    """
    from splinescope.monitor.outputs import Outputs

    declared = {
        name: Outputs.from_dict(spec.get("outputs", {})) for name, spec in (probes or {}).items()
    }
    out: dict[str, list[Curve]] = {}
    pairs = metrics[["probe", "key"]].drop_duplicates().itertuples(index=False)
    for probe, key in pairs:
        if probes:
            family = declared[probe].scalar(key) if probe in declared else None
            role = None if family is None else family.role
        else:
            role = _legacy_role(probe, key)
        if role is not None:
            out.setdefault(role, []).append((probe, key))
    return out


def _pick_adversarial(candidates: Sequence[Curve], adversarial_key: str | None) -> Curve | None:
    if adversarial_key is not None:
        for probe, key in candidates:
            if adversarial_key in (key, f"{probe}/{key}"):
                return probe, key
        raise SplinescopeError(
            f"adversarial_key {adversarial_key!r} was not logged; adversarial accuracies "
            f"logged: {[f'{p}/{k}' for p, k in candidates]}"
        )
    for preferred in ADVERSARIAL_PREFERENCE:
        for probe, key in candidates:
            if key.startswith(preferred):
                return probe, key
    return candidates[0] if candidates else None


def _train_twin(candidates: Sequence[Curve], test: Curve) -> Curve | None:
    probe, key = test
    return (probe, "train_" + key) if (probe, "train_" + key) in candidates else None


def detect_phenomena(
    metrics: pd.DataFrame,
    probes: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    train_threshold: float = 0.99,
    tolerance: float = 0.01,
    test_threshold: float | None = None,
    robust_threshold: float | None = None,
    descent_fraction: float = 0.25,
    min_relative_drop: float = 0.1,
    plateau_fraction: float = PLATEAU_FRACTION,
    adversarial_key: str | None = None,
    lc_key: str | None = None,
) -> dict[str, Any]:
    """The run summary: phenomena found in a run's scalars and the criteria used.

    ``metrics`` is a frame with columns step, probe, key, value, as ``load_metrics``
    returns; ``probes`` the run's probe specs (``load_probes``), whose declared roles say
    which curve is which (:func:`curves_by_role`): train and test accuracy; the test
    adversarial accuracy ``adversarial_key`` ("key" or "probe/key"; default: the first
    logged pgd l_inf, pgd l_2, fgsm l_inf, fgsm l_2, else any) and its ``train_``-prefixed
    twin of the same probe; LC near training points ``lc_key`` ("key" or "probe/key";
    default: the first logged).

    Returns keys interpolation_step, generalization_step, grokking_gap,
    robust_interpolation_step, robust_generalization_step, robustness_gap, lc_peak_step,
    lc_descent_step -- each a number or "not reached" (a gap whose interpolation step is 0
    is "undefined") -- for the curves that were logged (a phenomenon of a curve that was
    never logged is left out, not "not reached"); then the criteria and reference values:
    interpolation_threshold, generalization_tolerance or generalization_threshold,
    plateau_fraction, test_plateau, adversarial_key, robust_generalization_tolerance or
    robust_generalization_threshold, adversarial_plateau, lc_key, lc_descent_fraction,
    lc_min_relative_drop, lc_peak_value, lc_final_value.
    """
    missing = [c for c in ("step", "probe", "key", "value") if c not in metrics.columns]
    if missing:
        raise SplinescopeError(
            f"detect_phenomena: metrics lacks column(s) {missing}; expected the frame of "
            "splinescope.store.load_metrics (step, probe, key, value)"
        )

    roles = curves_by_role(metrics, probes)

    def curve(which: Curve | None) -> tuple[np.ndarray, np.ndarray] | None:
        if which is None:
            return None
        probe, key = which
        sel = metrics[(metrics["probe"] == probe) & (metrics["key"] == key)]
        if len(sel) == 0:
            return None
        return sel["step"].to_numpy(), sel["value"].to_numpy(np.float64)

    out: dict[str, Any] = {}
    criteria: dict[str, Any] = {}
    train = curve(next(iter(roles.get("train_accuracy", [])), None))
    test = curve(next(iter(roles.get("test_accuracy", [])), None))
    interp = None
    if train is not None:
        interp = interpolation_step(*train, threshold=train_threshold)
        out["interpolation_step"] = _or_not_reached(interp)
        criteria["interpolation_threshold"] = train_threshold
    gen_kw = dict(tolerance=tolerance, plateau_fraction=plateau_fraction)
    if test is not None:
        gen = generalization_step(*test, threshold=test_threshold, **gen_kw)
        out["generalization_step"] = _or_not_reached(gen)
        if train is not None:
            out["grokking_gap"] = _gap(interp, gen)
        if test_threshold is None:
            criteria["generalization_tolerance"] = tolerance
            criteria["plateau_fraction"] = plateau_fraction
            criteria["test_plateau"] = final_plateau(test[1], plateau_fraction, steps=test[0])
        else:
            criteria["generalization_threshold"] = test_threshold

    adv = _pick_adversarial(roles.get("test_adversarial_accuracy", []), adversarial_key)
    if adv is not None:
        criteria["adversarial_key"] = f"{adv[0]}/{adv[1]}"
        adv_train = curve(_train_twin(roles.get("train_adversarial_accuracy", []), adv))
        if adv_train is not None:
            r_interp = robust_interpolation_step(*adv_train, threshold=train_threshold)
            out["robust_interpolation_step"] = _or_not_reached(r_interp)
        adv_test = curve(adv)
        assert adv_test is not None
        r_gen = robust_generalization_step(*adv_test, threshold=robust_threshold, **gen_kw)
        out["robust_generalization_step"] = _or_not_reached(r_gen)
        if train is not None:
            out["robustness_gap"] = _gap(interp, r_gen)
        if robust_threshold is None:
            criteria["robust_generalization_tolerance"] = tolerance
            criteria["adversarial_plateau"] = final_plateau(
                adv_test[1], plateau_fraction, steps=adv_test[0]
            )
        else:
            criteria["robust_generalization_threshold"] = robust_threshold

    lcs = roles.get("train_lc", [])
    picked = (
        next((c for c in lcs if lc_key in (c[1], f"{c[0]}/{c[1]}")), None)
        if lc_key
        else (lcs[0] if lcs else None)
    )
    if lc_key is not None and picked is None:
        raise SplinescopeError(
            f"lc_key {lc_key!r} was not logged; LC curves near training points logged: "
            f"{[f'{p}/{k}' for p, k in lcs]}"
        )
    lc = curve(picked)
    if lc is not None:
        found = lc_peak_and_descent(
            *lc,
            descent_fraction,
            min_relative_drop=min_relative_drop,
            plateau_fraction=plateau_fraction,
        )
        out["lc_peak_step"] = _or_not_reached(found.peak_step)
        out["lc_descent_step"] = _or_not_reached(found.descent_step)
        criteria.update(
            lc_key=f"{picked[0]}/{picked[1]}",
            lc_descent_fraction=descent_fraction,
            lc_min_relative_drop=min_relative_drop,
            lc_peak_value=found.peak_value,
            lc_final_value=found.final_value,
        )
    out.update(criteria)
    return out


def detect_run(runs_dir: Any, run: str, **criteria: Any) -> dict[str, Any]:
    """:func:`detect_phenomena` on a stored run (its metrics and declared probes)."""
    from splinescope.store import load_metrics, load_probes

    return detect_phenomena(load_metrics(runs_dir, run), load_probes(runs_dir, run), **criteria)
