"""The figures of a paper-preset run, read from its store: LC at step 0, at the ascent peak and
at the end per point set (r = 0.05) with the detected phase steps, PGD accuracy per budget at
its post-interpolation minimum and at the end, boundary LC and the migration band share at
start, peak and end, and the run's wall time.

Run: .venv/bin/python benchmarks/paper_figures.py RUNS_DIR RUN [RUN ...]
"""

import sys

import numpy as np

from splinescope.analysis.phenomena import detect_run
from splinescope.store import get_run, load_metrics


def fmt(v) -> str:
    return (
        f"{v:,}"
        if isinstance(v, (int, np.integer))
        else (f"{v:.3g}" if isinstance(v, float) else str(v))
    )


def series(m, probe, key):
    sel = m[(m.probe == probe) & (m.key == key)].sort_values("step")
    return sel.step.to_numpy(), sel.value.to_numpy()


def start_peak_end(m, probe, key) -> str:
    s, v = series(m, probe, key)
    if not len(s):
        return "not logged"
    p = int(np.argmax(v))
    return f"{v[0]:.3g} (step {s[0]:,}) → peak {v[p]:.3g} (step {s[p]:,}) → {v[-1]:.3g} (step {s[-1]:,})"


runs_dir = sys.argv[1]
for run in sys.argv[2:]:
    row = get_run(runs_dir, run)
    m = load_metrics(runs_dir, run)
    summary = detect_run(runs_dir, run)
    print(f"== {row['name']} ({row['run_id']}, {row['status']}, last step {int(m.step.max()):,})")
    print(
        f"interpolation {fmt(summary.get('interpolation_step'))}; generalization "
        f"{fmt(summary.get('generalization_step'))} (test plateau {fmt(summary.get('test_plateau'))})"
    )
    for curve, ph in summary.get("lc_phases", {}).items():
        probe, key = curve.split("/")
        s, v = series(m, probe, key)
        peak = ph["ascent_peak_step"]
        at_peak = v[list(s).index(peak)] if isinstance(peak, int) else "-"
        print(
            f"  {curve:28s} step0 {v[0]:.3g}  peak {fmt(at_peak)} @ {fmt(peak)}  end {v[-1]:.3g} | "
            f"1st descent end {fmt(ph['first_descent_end_step'])} depth "
            f"{fmt(ph['first_descent_depth'])} | 2nd descent onset "
            f"{fmt(ph['second_descent_onset_step'])} final/peak {fmt(ph['final_to_peak'])}"
        )
    for curve, r in summary.get("delayed_robustness", {}).items():
        probe, key = curve.split("/")
        s, v = series(m, probe, key)
        raw_min = v[list(s).index(r["min_step"])] if isinstance(r["min_step"], int) else "-"
        print(
            f"  {key:28s} min {fmt(raw_min)} @ {fmt(r['min_step'])} (smoothed {fmt(r['min_value'])})"
            f"  end {v[-1]:.3g}  rise from {fmt(r['rise_step'])}"
        )
    print("  boundary LC:", start_peak_end(m, "boundary_lc", "boundary_total"))
    for key in ("band_length_share", "band_area_share", "band_enrichment", "n_regions"):
        print(f"  migration {key}:", start_peak_end(m, "migration", key))
