"""The paper view of a stored run: LC per point set with its detected phases marked, accuracy
and PGD accuracy per budget, the boundary-LC figure, the migration heat map over (distance,
step) and the frame slider — each built from the store's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import partition_png

from splinescope.analysis.phenomena import detect_run
from splinescope.monitor.registry import kinds
from splinescope.report import report_command
from splinescope.report.declared import wants_array
from splinescope.report.paper import (
    boundary_lc_figures,
    frame_slider,
    migration_heatmap,
    paper_figure,
)
from splinescope.store import RunStore
from splinescope.store.rundata import load_run_data

STEPS = np.concatenate([[0], np.unique(np.round(np.logspace(0, 5, 40)).astype(np.int64))])
PICTURE_STEPS = STEPS[::8]


def _phases(s, first=5.0, trough=1.8, peak=5.6, final=0.4):
    x = np.log10(1.0 + s)
    return float(np.interp(x, [0, 1.4, 3, 4.5, 6], [first, trough, peak, final, final]))


def _spec(kind, **options):
    probe = kinds()[kind].build(options)
    return {"kind": kind, "config": options, "outputs": probe.outputs().to_dict()}


@pytest.fixture
def paper_run(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run("paper", {})
    eps = (0.1, 0.2)
    store.set_probes(
        rid,
        {
            "accuracy": _spec("accuracy"),
            "lc_r005": _spec("lc", radius=0.05, per_class=False),
            "pgd": _spec("adversarial", eps=eps),
            "boundary_lc": _spec("boundary_lc", radius=0.05),
            "migration": _spec("migration"),
        },
    )
    with store.batch():
        for s in STEPS:
            s = int(s)
            acc = min(1.0, 0.1 + s / 100)
            store.log_scalars(rid, s, "accuracy", {"train_acc": acc, "test_acc": min(acc, 0.9)})
            lc = _phases(s)
            store.log_scalars(
                rid,
                s,
                "lc_r005",
                {"train_total": lc, "test_total": 0.9 * lc, "random_total": 1.5},
            )
            late = float(np.clip((np.log10(1 + s) - 4) / 0.7, 0, 1))
            store.log_scalars(
                rid, s, "pgd", {f"pgd_linf_acc_eps{e:g}": 0.4 * late * (1 - e) for e in eps}
            )
            store.log_scalars(rid, s, "boundary_lc", {"boundary_total": 2 + s / 5e4})
        for i, s in enumerate(PICTURE_STEPS):
            s = int(s)
            store.log_scalars(
                rid, s, "migration", {"band_length_share": 0.2 + 0.01 * i, "band_area_share": 0.2}
            )
            store.log_array(rid, s, "migration", "density", np.linspace(i, 0, 16))
            store.log_array(rid, s, "migration", "bin_edges", np.linspace(0, 10, 17))
            store.log_array(rid, s, "migration", "plane_png", partition_png(s))
    store.set_summary(rid, detect_run(tmp_path, rid, n_classes=10))
    store.close()
    return tmp_path, rid


def test_paper_figure_marks_the_detected_phases_on_the_curves(paper_run):
    runs_dir, rid = paper_run
    run = load_run_data(runs_dir, rid, arrays=wants_array)
    phases = run.summary["lc_phases"]["lc_r005/train_total"]
    assert isinstance(phases["first_descent_end_step"], int)
    assert isinstance(phases["second_descent_onset_step"], int)
    fig = paper_figure(run).figure
    steps, values = run.series("lc_r005", "train_total")
    marks = {
        t.hovertemplate.split(":")[1].split(" at ")[0].strip(): (t.x[0], t.y[0])
        for t in fig.data
        if t.mode == "markers" and t.hovertemplate and t.hovertemplate.startswith("train_total")
    }
    for field, label in (
        ("first_descent_end_step", "first descent ends"),
        ("ascent_peak_step", "ascent peak"),
        ("second_descent_onset_step", "second descent onset"),
    ):
        step = phases[field]
        x, y = marks[label]
        assert x == max(step, 0.5) and y == values[list(steps).index(step)]
    names = {t.name for t in fig.data}
    assert {"train points", "test points", "random points", "train accuracy"} <= names
    assert any("ε = 0.1" in (n or "") for n in names)
    assert run.summary["delayed_robustness"]["pgd/pgd_linf_acc_eps0.1"]["rise_step"] != (
        "not reached"
    )


def test_migration_heatmap_and_frames_are_the_stored_arrays(paper_run):
    runs_dir, rid = paper_run
    run = load_run_data(runs_dir, rid, arrays=wants_array)
    heat = migration_heatmap(run, "migration").figure.data[0]
    z = np.asarray(heat.z)
    assert z.shape == (16, len(PICTURE_STEPS))
    assert np.allclose(z[:, 3], np.linspace(3, 0, 16))
    assert np.allclose(heat.y, 0.5 * (np.linspace(0, 10, 17)[1:] + np.linspace(0, 10, 17)[:-1]))
    slider = frame_slider(run, "migration").figure
    assert len(slider.data) == len(PICTURE_STEPS) == len(slider.layout.sliders[0].steps)
    assert [t.visible for t in slider.data].count(True) == 1
    boundary = boundary_lc_figures([run], "boundary_lc")[0].figure
    assert {t.name for t in boundary.data} == {
        "decision boundary",
        "train points",
        "test points",
        "random points",
    }


def test_report_page_has_the_paper_view_and_phase_tables(paper_run, tmp_path):
    runs_dir, rid = paper_run
    page = report_command([rid], runs_dir, tmp_path / "paper.html").read_text(encoding="utf-8")
    assert '<section id="paper-view">' in page and 'data-figure="paper-view"' in page
    assert "LC phases per point set and radius" in page and "Delayed robustness per budget" in page
    for slug in ("migration-migration", "frames-migration", "boundary-lc-boundary_lc"):
        assert f'data-figure="{slug}"' in page
    assert "rule lc first descent" in page  # the rules are in the criteria table
