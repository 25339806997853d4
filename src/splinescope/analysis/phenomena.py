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
  is at least ``threshold``. A curve that never improves has a plateau too (its step would be
  early): :func:`detect_phenomena` applies the chance rule below and reports the plateau.
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
* **chance level** -- no generalization or robustness is announced at chance: the final
  plateau of the curve must be at least ``chance + chance_margin`` (0.1), with chance
  ``1 / n_classes`` when the number of classes is known, else the curve's first logged value
  (an untrained network's accuracy); otherwise the step is "not reached".
* **smoothing** -- the phase rules below read curves smoothed on the log-step grid: a
  Gaussian kernel average in ``x = log10(1 + step)`` with a bandwidth of ``bandwidth``
  decades (0.1), evaluated at the logged steps (:func:`smooth_log_steps`).
* **LC phases** (:func:`lc_phases`, per point set and radius, on the smoothed curve): the
  **ascent** is the largest rise, a trough followed by a later peak maximising
  ``peak - trough``; it counts when ``trough <= (1 - min_rise) * peak`` (min_rise 0.1). The
  **first descent** is the fall from the first logged value to that trough, counted when the
  trough is at least ``min_depth`` (0.1) below the first value (depth ``1 - trough /
  first``, end step = the trough's step). The **second descent** follows the peak: with
  ``final`` the final plateau, it counts when the peak is not the last point and ``final <=
  (1 - min_drop) * peak`` (min_drop 0.1); its onset is the first step after the peak where
  LC is at most ``peak - descent_fraction * (peak - final)``; ``final_to_peak`` is
  ``final / peak``. Without an ascent no phase is announced.
* **delayed robustness** (:func:`delayed_robustness`, per attack budget, on the smoothed
  test adversarial accuracy): the minimum at or after the interpolation step (step and
  value); a later rise counts when the final plateau exceeds that minimum by ``min_gain``
  (0.05) and is above chance (the chance rule); the rise step is the first step after the
  minimum where the curve reaches half-way from the minimum to the final plateau.
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


SMOOTH_BANDWIDTH = 0.1
CHANCE_MARGIN = 0.1

#: The phase rules in words, as the summary states them (the report's criteria table).
RULES: dict[str, str] = {
    "rule_smoothing": "curves smoothed by a Gaussian kernel in log10(1 + step), bandwidth "
    "{bandwidth} decades, before the phase rules",
    "rule_chance": "generalization and robustness are announced only if the final plateau is "
    "≥ chance + {chance_margin} (chance = 1/n_classes, else the first logged value)",
    "rule_lc_ascent": "largest rise trough → later peak, counted if trough ≤ (1 - "
    "{min_rise}) × peak",
    "rule_lc_first_descent": "first value → ascent trough, counted if the trough is ≥ "
    "{min_depth} × first value below it; end step = trough step",
    "rule_lc_second_descent": "after the ascent peak, counted if final plateau ≤ (1 - "
    "{min_drop}) × peak; onset = first step at peak - {descent_fraction} × (peak - final)",
    "rule_delayed_robustness": "minimum of test adversarial accuracy at/after interpolation; "
    "counted if the final plateau is ≥ minimum + {min_gain} and above chance; rise step = "
    "first step half-way from the minimum to the plateau",
}


def smooth_log_steps(steps: Any, values: Any, bandwidth: float = SMOOTH_BANDWIDTH) -> np.ndarray:
    """The curve smoothed on the log-step grid: at each logged step, the Gaussian-weighted mean
    of the values with weights ``exp(-(x_i - x_j)^2 / (2 bandwidth^2))``, ``x = log10(1 +
    step)`` (bandwidth in decades; 0 returns the values). Steps ascending, no NaN (as
    :func:`_series` returns them); output ``[n]`` float64."""
    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if not bandwidth >= 0:
        raise SplinescopeError(f"bandwidth must be >= 0 (decades), got {bandwidth}")
    if bandwidth == 0 or v.size < 2:
        return v.copy()
    x = np.log10(1.0 + np.maximum(s, 0.0))
    w = np.exp(-0.5 * ((x[:, None] - x[None, :]) / bandwidth) ** 2)
    return (w @ v) / w.sum(axis=1)


@dataclass(frozen=True)
class LCPhases:
    """The three phases of an LC curve (rules: module docstring); steps are logged steps,
    values in the curve's units (smoothed). ``None`` where a phase is not found."""

    first_value: float
    final_value: float
    first_descent_end_step: int | None
    first_descent_depth: float | None
    ascent_trough_step: int | None
    ascent_peak_step: int | None
    ascent_peak_value: float | None
    second_descent_onset_step: int | None
    final_to_peak: float | None

    def to_summary(self) -> dict[str, Any]:
        """JSON-friendly, with "not reached" for missing phases."""
        return {k: _or_not_reached(getattr(self, k)) for k in self.__dataclass_fields__}


def _largest_rise(v: np.ndarray) -> tuple[int, int]:
    """``(j, p)``, ``j <= p``, maximising ``v[p] - v[j]`` (first such pair)."""
    best, pair, low = -np.inf, (0, 0), 0
    for p in range(v.size):
        if v[p] < v[low]:
            low = p
        if v[p] - v[low] > best:
            best, pair = v[p] - v[low], (low, p)
    return pair


def lc_phases(
    steps: Any,
    lc: Any,
    *,
    bandwidth: float = SMOOTH_BANDWIDTH,
    min_depth: float = 0.1,
    min_rise: float = 0.1,
    min_drop: float = 0.1,
    descent_fraction: float = 0.25,
    plateau_fraction: float = PLATEAU_FRACTION,
) -> LCPhases:
    """First descent, ascent and second descent of an LC curve (module docstring)."""
    for name, value in (("min_depth", min_depth), ("min_rise", min_rise), ("min_drop", min_drop)):
        _fraction(value, name)
    descent_fraction = _fraction(descent_fraction, "descent_fraction")
    s, raw = _series(steps, lc, "lc_phases")
    if raw.size == 0:
        return LCPhases(math.nan, math.nan, None, None, None, None, None, None, None)
    v = smooth_log_steps(s, raw, bandwidth)
    first, final = float(v[0]), final_plateau(v, plateau_fraction, steps=s)
    j, p = _largest_rise(v)
    peak, trough = float(v[p]), float(v[j])
    if p == j or not trough <= (1 - min_rise) * peak:
        return LCPhases(first, final, None, None, None, None, None, None, None)
    end = depth = None
    if j > 0 and trough <= (1 - min_depth) * first:
        end, depth = int(s[j]), 1 - trough / first if first else None
    onset = ratio = None
    if p < v.size - 1 and final <= (1 - min_drop) * peak:
        level = peak - descent_fraction * (peak - final)
        below = np.flatnonzero(v[p + 1 :] <= level)
        if below.size:
            onset = int(s[p + 1 + below[0]])
            ratio = final / peak if peak else None
    return LCPhases(first, final, end, depth, int(s[j]), int(s[p]), peak, onset, ratio)


@dataclass(frozen=True)
class DelayedRobustness:
    """Adversarial accuracy's post-interpolation minimum and later rise (module docstring)."""

    min_step: int | None
    min_value: float | None
    rise_step: int | None
    final_value: float
    gain: float | None
    chance: float

    def to_summary(self) -> dict[str, Any]:
        """JSON-friendly, with "not reached" for missing values."""
        return {k: _summary_value(getattr(self, k)) for k in self.__dataclass_fields__}


def _chance(v: np.ndarray, n_classes: int | None) -> float:
    if n_classes is not None:
        return 1.0 / n_classes
    return float(v[0]) if v.size else math.nan


def delayed_robustness(
    steps: Any,
    adv_acc: Any,
    interpolation: int | None,
    *,
    n_classes: int | None = None,
    bandwidth: float = SMOOTH_BANDWIDTH,
    min_gain: float = 0.05,
    chance_margin: float = CHANCE_MARGIN,
    plateau_fraction: float = PLATEAU_FRACTION,
) -> DelayedRobustness:
    """Post-interpolation minimum and late rise of test adversarial accuracy."""
    s, raw = _accuracies(steps, adv_acc, "delayed_robustness")
    v = smooth_log_steps(s, raw, bandwidth)
    chance = _chance(raw, n_classes)
    final = final_plateau(v, plateau_fraction, steps=s) if v.size else math.nan
    after = np.flatnonzero(s >= interpolation) if interpolation is not None else np.array([])
    if after.size == 0:
        return DelayedRobustness(None, None, None, final, None, chance)
    m = int(after[np.argmin(v[after])])
    low = float(v[m])
    rise = gain = None
    if final - low >= min_gain and final >= chance + chance_margin and m < v.size - 1:
        half = np.flatnonzero(v[m + 1 :] >= low + 0.5 * (final - low))
        if half.size:
            rise, gain = int(s[m + 1 + half[0]]), final - low
    return DelayedRobustness(int(s[m]), low, rise, final, gain, chance)


# -- the run summary --------------------------------------------------------------------


def _or_not_reached(value: int | float | None) -> int | float | str:
    return NOT_REACHED if value is None else value


def _summary_value(value: int | float | None) -> int | float | str:
    if isinstance(value, float) and math.isnan(value):
        return UNDEFINED
    return _or_not_reached(value)


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
    "test_lc",
    "random_lc",
    "boundary_lc",
)
#: LC curves whose phases are detected, in this order.
LC_ROLES = ("train_lc", "test_lc", "random_lc", "boundary_lc")


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
    n_classes: int | None = None,
    chance_margin: float = CHANCE_MARGIN,
    bandwidth: float = SMOOTH_BANDWIDTH,
    min_depth: float = 0.1,
    min_rise: float = 0.1,
    min_gain: float = 0.05,
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

    No generalization or robustness is announced at chance (``n_classes``: chance is
    ``1 / n_classes``, else the curve's first value; the plateau must exceed it by
    ``chance_margin``): criteria chance_level, chance_margin. The phase rules (module
    docstring; ``bandwidth``, ``min_depth``, ``min_rise``, ``min_relative_drop`` as the
    second descent's drop, ``descent_fraction``, ``min_gain``) add ``lc_phases`` — per LC
    curve of every point set (``"probe/key"``), :meth:`LCPhases.to_summary` — and
    ``delayed_robustness`` — per test adversarial accuracy curve,
    :meth:`DelayedRobustness.to_summary` — with the headline steps lc_first_descent_step,
    lc_ascent_peak_step, lc_second_descent_step (of the picked train LC curve) and
    delayed_robustness_step (of the picked adversarial curve), and the rules in words
    (``rule_*`` keys).
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

    def above_chance(curve_: tuple[np.ndarray, np.ndarray]) -> bool:
        _, v = _series(*curve_, "detect_phenomena")
        chance = _chance(v, n_classes)
        return final_plateau(v, plateau_fraction, steps=curve_[0]) >= chance + chance_margin

    if n_classes is not None and not (isinstance(n_classes, int) and n_classes >= 1):
        raise SplinescopeError(f"n_classes must be a positive int or None, got {n_classes!r}")
    chance_criteria = {
        "chance_level": (
            1.0 / n_classes if n_classes is not None else "first logged value of each curve"
        ),
        "chance_margin": chance_margin,
    }
    if test is not None:
        gen = generalization_step(*test, threshold=test_threshold, **gen_kw)
        if gen is not None and not above_chance(test):
            gen = None
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
        if r_gen is not None and not above_chance(adv_test):
            r_gen = None
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
    phase_kw = dict(
        bandwidth=bandwidth,
        min_depth=min_depth,
        min_rise=min_rise,
        min_drop=min_relative_drop,
        descent_fraction=descent_fraction,
        plateau_fraction=plateau_fraction,
    )
    phases: dict[str, Any] = {}
    for role in LC_ROLES:
        for which in roles.get(role, []):
            data = curve(which)
            if data is not None:
                phases[f"{which[0]}/{which[1]}"] = lc_phases(*data, **phase_kw).to_summary()
    if phases:
        out["lc_phases"] = phases
        if picked is not None:
            main = phases[f"{picked[0]}/{picked[1]}"]
            out["lc_first_descent_step"] = main["first_descent_end_step"]
            out["lc_ascent_peak_step"] = main["ascent_peak_step"]
            out["lc_second_descent_step"] = main["second_descent_onset_step"]
    robust: dict[str, Any] = {}
    if train is not None:
        for which in roles.get("test_adversarial_accuracy", []):
            data = curve(which)
            if data is not None:
                found_r = delayed_robustness(
                    *data,
                    interp,
                    n_classes=n_classes,
                    bandwidth=bandwidth,
                    min_gain=min_gain,
                    chance_margin=chance_margin,
                    plateau_fraction=plateau_fraction,
                )
                robust[f"{which[0]}/{which[1]}"] = found_r.to_summary()
    if robust:
        out["delayed_robustness"] = robust
        if adv is not None:
            out["delayed_robustness_step"] = robust[f"{adv[0]}/{adv[1]}"]["rise_step"]
    if "generalization_step" in out or "robust_generalization_step" in out or robust:
        criteria.update(chance_criteria)
    if phases or robust:
        params = dict(
            bandwidth=bandwidth,
            chance_margin=chance_margin,
            min_rise=min_rise,
            min_depth=min_depth,
            min_drop=min_relative_drop,
            descent_fraction=descent_fraction,
            min_gain=min_gain,
        )
        criteria.update({k: rule.format(**params) for k, rule in RULES.items()})
    out.update(criteria)
    return out


def run_n_classes(runs_dir: Any, run: str) -> int | None:
    """The number of classes of a stored run: its environment's ``n_classes`` if recorded,
    else that of the dataset its config names (loaded); None when neither is available."""
    from splinescope.store import get_run

    row = get_run(runs_dir, run)
    recorded = (row.get("env") or {}).get("n_classes")
    if isinstance(recorded, int):
        return recorded
    config = row.get("config") or {}
    if not config.get("dataset"):
        return None
    try:
        from splinescope.train.build import load_data
        from splinescope.train.config import TrainConfig

        return int(load_data(TrainConfig.from_dict(config)).n_classes)
    except Exception:  # a user's dataset that cannot be rebuilt here: chance from the curves
        return None


def detect_run(runs_dir: Any, run: str, **criteria: Any) -> dict[str, Any]:
    """:func:`detect_phenomena` on a stored run (its metrics and declared probes); chance
    level from :func:`run_n_classes` unless ``n_classes`` is given."""
    from splinescope.store import load_metrics, load_probes

    if "n_classes" not in criteria:
        criteria["n_classes"] = run_n_classes(runs_dir, run)
    return detect_phenomena(load_metrics(runs_dir, run), load_probes(runs_dir, run), **criteria)
