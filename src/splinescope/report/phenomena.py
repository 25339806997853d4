"""The detected phenomena of a run (its store summary) as labels, marks and sentences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from splinescope.report.rundata import format_number

NOT_REACHED = "not reached"

# key -> (short label, whether the value is a training step that can be marked on a step axis)
PHENOMENA: dict[str, tuple[str, bool]] = {
    "interpolation_step": ("interpolation (train fitted)", True),
    "generalization_step": ("generalization (test)", True),
    "grokking_gap": ("grokking gap (steps)", False),
    "robust_interpolation_step": ("robust interpolation", True),
    "robust_generalization_step": ("robust generalization", True),
    "robustness_gap": ("robustness gap (steps)", False),
    "lc_peak_step": ("LC peak", True),
    "lc_descent_step": ("LC descent onset", True),
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
    """The known phenomena first (in PHENOMENA order), then any other summary keys sorted."""
    items = []
    for key, (label, _) in PHENOMENA.items():
        if key in summary:
            v = summary[key]
            items.append(SummaryItem(key, label, v, format_number(v)))
    for key in sorted(k for k in summary if k not in PHENOMENA):
        v = summary[key]
        items.append(SummaryItem(key, key.replace("_", " "), v, format_number(v)))
    return items


def step_marks(summary: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(key, label, step) for each reached phenomenon that is a step, by ascending step."""
    marks = []
    for key, (label, is_step) in PHENOMENA.items():
        v = summary.get(key)
        if is_step and isinstance(v, (int, float)) and not isinstance(v, bool):
            marks.append((key, label, int(v)))
    return sorted(marks, key=lambda m: m[2])


def _step(summary: Mapping[str, Any], key: str) -> str | None:
    v = summary.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"step {format_number(v)}"
    return None


def summary_sentences(summary: Mapping[str, Any]) -> list[str]:
    """Short plain sentences telling what happened when, for the top of the report."""
    out: list[str] = []
    interp, gen = _step(summary, "interpolation_step"), _step(summary, "generalization_step")
    if "interpolation_step" in summary:
        out.append(
            f"The training set was fitted at {interp}."
            if interp
            else "The training set has not been fitted (interpolation not reached)."
        )
    if "generalization_step" in summary:
        if gen:
            gap = summary.get("grokking_gap")
            tail = (
                f", {format_number(gap)} steps after interpolation (grokking gap)"
                if isinstance(gap, (int, float)) and not isinstance(gap, bool)
                else ""
            )
            out.append(f"Test accuracy generalized at {gen}{tail}.")
        else:
            out.append("Test accuracy has not generalized (not reached).")
    r_interp = _step(summary, "robust_interpolation_step")
    r_gen = _step(summary, "robust_generalization_step")
    if "robust_interpolation_step" in summary or "robust_generalization_step" in summary:
        parts = [
            f"robust interpolation at {r_interp}"
            if r_interp
            else "robust interpolation not reached",
            f"robust generalization at {r_gen}" if r_gen else "robust generalization not reached",
        ]
        gap = summary.get("robustness_gap")
        if isinstance(gap, (int, float)) and not isinstance(gap, bool):
            parts.append(f"robustness gap {format_number(gap)} steps")
        out.append("Adversarial accuracy: " + "; ".join(parts) + ".")
    peak, descent = _step(summary, "lc_peak_step"), _step(summary, "lc_descent_step")
    if "lc_peak_step" in summary or "lc_descent_step" in summary:
        out.append(
            "Local complexity near training points "
            + (f"peaked at {peak}" if peak else "has no peak yet")
            + (f" and began to descend at {descent}." if descent else "; no descent yet.")
        )
    return out
