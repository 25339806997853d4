"""The detected phenomena of a run (its store summary) as labels, marks and sentences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from splinescope.analysis.phenomena import NOT_REACHED
from splinescope.store.rundata import format_number

# key -> (short label, whether the value is a training step that can be marked on a step axis).
# The gaps are ratios (later step / interpolation step), as analysis.phenomena defines them.
PHENOMENA: dict[str, tuple[str, bool]] = {
    "interpolation_step": ("interpolation (train fitted)", True),
    "generalization_step": ("generalization (test settled)", True),
    "grokking_gap": ("grokking gap (× interpolation step)", False),
    "robust_interpolation_step": ("robust interpolation", True),
    "robust_generalization_step": ("robust generalization", True),
    "robustness_gap": ("robustness gap (× interpolation step)", False),
    "lc_peak_step": ("LC peak", True),
    "lc_descent_step": ("LC descent onset", True),
    "lc_first_descent_step": ("LC first descent ends", True),
    "lc_ascent_peak_step": ("LC ascent peak (phases)", True),
    "lc_second_descent_step": ("LC second descent onset", True),
    "delayed_robustness_step": ("delayed robustness (adversarial accuracy rises)", True),
}


@dataclass(frozen=True)
class SummaryItem:
    """One summary entry: store key, readable label, raw value and its display text."""

    key: str
    label: str
    value: Any
    text: str

    @property
    def reached(self) -> bool:
        """False if the store says "not reached" (or has no value)."""
        return self.value is not None and self.value != NOT_REACHED

    @property
    def numeric(self) -> bool:
        """True if the value is a number (int or float, not bool)."""
        return isinstance(self.value, (int, float)) and not isinstance(self.value, bool)


def summary_items(summary: Mapping[str, Any]) -> list[SummaryItem]:
    """The known phenomena, in PHENOMENA order, that the summary holds."""
    return [
        SummaryItem(key, label, summary[key], format_number(summary[key]))
        for key, (label, _) in PHENOMENA.items()
        if key in summary
    ]


def criteria_items(summary: Mapping[str, Any]) -> list[SummaryItem]:
    """The other summary entries (detection criteria and reference values), sorted by key."""
    return [
        SummaryItem(key, key.replace("_", " "), summary[key], _criteria_text(summary[key]))
        for key in sorted(k for k in summary if k not in PHENOMENA)
    ]


def _criteria_text(value: Any) -> str:
    if isinstance(value, Mapping):  # per-curve results: tabulated in the report's paper view
        return f"{len(value)} curve(s): see the paper view"
    return format_number(value)


def step_marks(summary: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(key, label, step) for each reached phenomenon that is a step, by ascending step."""
    marks = []
    for key, (label, is_step) in PHENOMENA.items():
        v = summary.get(key)
        if is_step and isinstance(v, (int, float)) and not isinstance(v, bool):
            marks.append((key, label, int(v)))
    return sorted(marks, key=lambda m: m[2])


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _step(summary: Mapping[str, Any], key: str) -> str | None:
    v = summary.get(key)
    return f"step {format_number(v)}" if _num(v) else None


def _gap(summary: Mapping[str, Any], key: str, name: str) -> str:
    v = summary.get(key)
    return f", {format_number(v)}× the interpolation step ({name})" if _num(v) else ""


def summary_sentences(summary: Mapping[str, Any]) -> list[str]:
    """Short plain sentences telling what happened when, for the top of the report."""
    out: list[str] = []
    interp, gen = _step(summary, "interpolation_step"), _step(summary, "generalization_step")
    thr = summary.get("interpolation_threshold")
    crit = f" (train accuracy ≥ {format_number(thr)})" if _num(thr) else ""
    if "interpolation_step" in summary:
        out.append(
            f"The training set was fitted{crit} at {interp}."
            if interp
            else f"The training set has not been fitted{crit}: interpolation not reached."
        )
    if "generalization_step" in summary:
        plateau = summary.get("test_plateau")
        level = f" (final plateau {format_number(plateau)})" if _num(plateau) else ""
        if gen:
            gap = _gap(summary, "grokking_gap", "grokking gap")
            out.append(f"Test accuracy settled at its final level{level} at {gen}{gap}.")
        else:
            out.append(f"Test accuracy has not settled{level}: generalization not reached.")
    r_interp = _step(summary, "robust_interpolation_step")
    r_gen = _step(summary, "robust_generalization_step")
    if "robust_interpolation_step" in summary or "robust_generalization_step" in summary:
        adv = summary.get("adversarial_key")
        parts = []
        if "robust_interpolation_step" in summary:
            parts.append(
                f"robust interpolation at {r_interp}"
                if r_interp
                else "robust interpolation not reached"
            )
        parts.append(
            f"robust generalization at {r_gen}" + _gap(summary, "robustness_gap", "robustness gap")
            if r_gen
            else "robust generalization not reached"
        )
        what = f"Adversarial accuracy ({adv})" if isinstance(adv, str) else "Adversarial accuracy"
        out.append(f"{what}: " + "; ".join(parts) + ".")
    out += _phase_sentences(summary)
    peak, descent = _step(summary, "lc_peak_step"), _step(summary, "lc_descent_step")
    if "lc_peak_step" in summary or "lc_descent_step" in summary:
        out.append(
            "Local complexity near training points "
            + (f"peaked at {peak}" if peak else "has no peak yet")
            + (f" and began to descend at {descent}." if descent else "; no descent yet.")
        )
    return out


def _phase_sentences(summary: Mapping[str, Any]) -> list[str]:
    """One sentence on the LC phases of the main train curve and one on delayed robustness."""
    out = []
    first = _step(summary, "lc_first_descent_step")
    peak = _step(summary, "lc_ascent_peak_step")
    second = _step(summary, "lc_second_descent_step")
    if "lc_ascent_peak_step" in summary:
        parts = [
            f"a first descent ending at {first}" if first else "no first descent",
            f"an ascent peaking at {peak}" if peak else "no ascent",
            f"a second descent from {second}" if second else "no second descent",
        ]
        out.append("Phases of LC near training points: " + ", ".join(parts) + ".")
    robust = summary.get("delayed_robustness")
    if isinstance(robust, Mapping) and robust:
        risen = [
            f"{curve.split('/')[-1]} from step {format_number(r['rise_step'])}"
            for curve, r in robust.items()
            if _num(r.get("rise_step"))
        ]
        out.append(
            "Delayed robustness (adversarial accuracy rises again after its post-interpolation "
            "minimum): " + ("; ".join(risen) if risen else "not reached at any budget") + "."
        )
    return out
