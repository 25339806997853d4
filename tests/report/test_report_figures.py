"""The report's figures carry exactly the stored data, on the shared log-step axis."""

from __future__ import annotations

import numpy as np
import pandas as pd

from report import synthetic as S
from splinescope.report import figures as F
from splinescope.report._plotting import ZERO_STEP_X
from splinescope.store.rundata import RunData


def _run(run_id="aaaa1111", name="grok-digits", seed=0, last=20000, summary=S.SUMMARY, arrays=True):
    return RunData(
        run_id,
        name,
        "finished",
        summary=summary,
        metrics=S.metrics_frame(seed, last),
        arrays=S.arrays_frame(last) if arrays else RunData("x", "x", "x").arrays,
    )


def _traces(fig, name):
    return [t for t in fig.figure.data if t.name == name]


def test_accuracy_lc_figure_plots_the_stored_values_at_their_steps():
    run = _run()
    fig = F.headline_figure([run])
    for probe, key, label in [
        ("accuracy", "train_acc", "train accuracy"),
        ("accuracy", "test_acc", "test accuracy"),
        ("adversarial", "pgd_linf_acc", "adversarial accuracy: pgd_linf"),
        ("lc", "random_total", "LC near random points"),
    ]:
        (trace,) = _traces(fig, label)
        steps, values = run.series(probe, key)
        np.testing.assert_array_equal(trace.y, values)
        np.testing.assert_array_equal(trace.customdata, steps)
        np.testing.assert_array_equal(trace.x, np.where(steps == 0, ZERO_STEP_X, steps))
    layout = fig.figure.layout
    assert layout.xaxis.type == "log" and layout.xaxis2.type == "log"
    assert layout.xaxis.matches == "x2" or layout.xaxis2.matches == "x"  # shared step axis


def test_phenomena_are_marked_in_both_panels_at_their_steps():
    fig = F.headline_figure([_run()])
    marks = [t for t in fig.figure.data if t.legendgroup and t.legendgroup.startswith("mark-")]
    by_name: dict[str, list] = {}
    for t in marks:
        by_name.setdefault(t.legendgroup, []).append(t)
    assert len(by_name) == 5  # five reached step phenomena in S.SUMMARY
    lc_peak = by_name["mark-0-lc_peak_step"]
    assert len(lc_peak) == 2 and {t.xaxis for t in lc_peak} == {"x", "x2"}
    assert all(tuple(t.x) == (1000.0, 1000.0) for t in lc_peak)


def test_several_runs_are_told_apart_by_name_and_colour():
    a, b = _run("aaaa1111"), _run("bbbb2222", seed=1, last=5000)
    fig = F.headline_figure([a, b])
    (ta,) = _traces(fig, "grok-digits (aaaa1111): test accuracy")
    (tb,) = _traces(fig, "grok-digits (bbbb2222): test accuracy")
    assert ta.line.color != tb.line.color
    assert tb.customdata[-1] == 5000
    renamed = RunData("bbbb2222", "other", "finished", metrics=S.metrics_frame(1, 5000))
    assert _traces(F.headline_figure([a, renamed]), "other: train accuracy")


def test_builders_skip_what_was_not_logged_and_unknown_probes_get_panels():
    only_acc = S.metrics_frame(last=500)
    only_acc = only_acc[only_acc.probe == "accuracy"]
    run = RunData("r", "n", "running", metrics=only_acc)
    assert F.lc_layers_figure([run]) is None
    assert F.hessian_figure([run]) is None
    assert F.density_figure([run]) is None
    fig = F.headline_figure([run])
    layout = fig.figure.layout.to_plotly_json()
    assert "yaxis2" not in layout and layout["yaxis"]["title"]["text"] == "accuracy"
    extra = pd.DataFrame(
        {"step": [0, 10], "probe": ["cka", "cka"], "key": ["l1_l2"] * 2, "value": [0.1, 0.9]}
    )
    slugs = [
        f.slug
        for f in F.all_figures([RunData("r", "n", "running", metrics=pd.concat([only_acc, extra]))])
    ]
    assert slugs == ["headline", "loss", "probe-cka"]


def test_all_figures_of_a_full_run():
    slugs = [f.slug for f in F.all_figures([_run()])]
    assert slugs == [
        "headline",
        "loss",
        "lc-layers",
        "lc-class",
        "weights",
        "units",
        "hessian",
        "hessian-density",
        "probe-hessian-other",
        "probe-codes",
    ]
    (other,) = [f for f in F.all_figures([_run()]) if f.slug == "probe-hessian-other"]
    assert [t.name for t in other.figure.data] == ["n_outliers"]  # the key no figure shows


def test_lc_per_layer_and_per_class_cover_every_stored_key():
    run = _run(last=3000)
    layers = F.lc_layers_figure([run]).figure
    assert {(t.name, t.xaxis) for t in layers.data} == {
        (layer, axis) for layer in S.LAYERS for axis in ("x", "x2", "x3")
    }
    classes = F.lc_class_figure([run]).figure
    assert [t.name for t in classes.data] == [f"class {c}" for c in range(S.N_CLASSES)]


def test_density_figure_shows_first_and_last_stored_steps():
    run = _run()
    fig = F.density_figure([run], max_steps=3).figure
    stored = [s for s, _ in run.array_steps("hessian", "density")]
    names = [t.name for t in fig.data]
    assert names[0] == f"step {stored[0]:,}" and names[-1] == f"step {stored[-1]:,}"
    assert len(names) == 3


def test_hessian_trace_band_is_value_plus_minus_standard_error():
    run = _run(last=1000)
    fig = F.hessian_figure([run]).figure
    (band,) = [t for t in fig.data if t.name == "trace ± s.e."]
    _, trace = run.series("hessian", "trace")
    _, se = run.series("hessian", "trace_se")
    np.testing.assert_allclose(band.y[: len(trace)], trace + se)
    np.testing.assert_allclose(band.y[len(trace) :], (trace - se)[::-1])


def test_lc_totals_carry_their_standard_error_band():
    run = _run(last=1000)
    fig = F.headline_figure([run]).figure
    (band,) = [t for t in fig.data if t.name == "LC near train points ± s.e."]
    _, lc = run.series("lc", "train_total")
    _, sem = run.series("lc", "train_total_sem")
    np.testing.assert_allclose(band.y[: len(lc)], lc + sem)
    assert not [t for t in fig.data if t.name and "sem" in t.name]  # no curve of the s.e.


def test_units_figure_shows_all_layers_and_each_layer():
    run = _run(last=1000)
    fig = F.units_figure([run]).figure
    dead = {t.name for t in fig.data if t.xaxis == "x"}
    always = {t.name for t in fig.data if t.xaxis == "x2"}
    assert dead == always == {"all layers", *S.LAYERS}
    (total,) = [t for t in fig.data if t.name == "all layers" and t.xaxis == "x"]
    np.testing.assert_array_equal(total.y, run.series("units", "dead_frac")[1])
