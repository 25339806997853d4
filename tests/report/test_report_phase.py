"""Phase charts from a stored sweep (runs written straight into the store, no training): the
cell values equal the stored summaries averaged over seeds, not-reached cells are marked and
never coloured, the page carries the values, and it renders in a real browser."""

import json
import math

import numpy as np
import pytest

from splinescope.analysis.phenomena import NOT_REACHED
from splinescope.report.phase import VALUE, cell, phase_figures, sweep_table
from splinescope.report.sweep_page import render_sweep_report, write_sweep_report
from splinescope.store import RunStore
from splinescope.store.sweeps import PointSpec, record_attempt, register_sweep, set_point_run
from splinescope.sweep.spec import point_name

SCALES, DECAYS, SEEDS = (1.0, 8.0), (0.0, 0.1), (0, 1)


def _gap(scale, decay, seed):
    if scale == 8.0 and decay == 0.0:
        return NOT_REACHED  # grokking never happened there
    return scale * (1 + 10 * decay) + seed  # any distinct numbers


@pytest.fixture
def stored_sweep(tmp_path):
    spec = {
        "name": "ph",
        "base": "grok-digits",
        "grid": {"init_scale": list(SCALES), "weight_decay": list(DECAYS)},
        "seeds": list(SEEDS),
        "report": {"x": "init_scale", "y": "weight_decay", "quantities": ["grokking_gap"]},
    }
    coords = [
        {"init_scale": s, "weight_decay": d, "seed": k}
        for s in SCALES
        for d in DECAYS
        for k in SEEDS
    ]
    points = [PointSpec(point_name("ph", c), i, c, {"c": c}) for i, c in enumerate(coords)]
    register_sweep(tmp_path, "ph", spec, ["init_scale", "weight_decay", "seed"], points)
    for p, c in zip(points, coords):
        with RunStore(tmp_path) as store:
            rid = store.create_run(p.name, {"c": c})
            for step in (0, 10, 20):
                store.log_scalars(rid, step, "accuracy", {"test_acc": c["init_scale"] / 10})
            store.set_summary(
                rid, {"grokking_gap": _gap(c["init_scale"], c["weight_decay"], c["seed"])}
            )
            store.set_status(rid, "finished")
        set_point_run(tmp_path, "ph", p.name, rid)
        record_attempt(
            tmp_path, "ph", p.name, run_id=rid, outcome="finished", started_at=0.0, max_attempts=2
        )
    return tmp_path


def test_cells_average_seeds_and_mark_not_reached(stored_sweep):
    table = sweep_table(stored_sweep, "ph")
    for s in SCALES:
        for d in DECAYS:
            names = [
                point_name("ph", {"init_scale": s, "weight_decay": d, "seed": k}) for k in SEEDS
            ]
            got = cell(table, names, "grokking_gap")
            gaps = [_gap(s, d, k) for k in SEEDS]
            if NOT_REACHED in gaps:
                assert got.n_values == 0 and got.status == NOT_REACHED and math.isnan(got.value)
                assert got.text == "×"
            else:
                assert got.n_values == 2 and got.value == pytest.approx(np.mean(gaps))
    assert table.values["accuracy/test_acc"].tolist() == [0.1] * 4 + [0.8] * 4
    assert (table.status["accuracy/test_acc"] == VALUE).all()


def test_heat_map_leaves_not_reached_uncoloured_and_marks_it(stored_sweep):
    table = sweep_table(stored_sweep, "ph")
    heat, line = phase_figures(table)
    assert heat.slug == "phase-grokking-gap" and line.slug == "line-grokking-gap-init-scale"
    (hm,) = [t for t in heat.figure.data if t.type == "heatmap"]
    z = np.array(hm.z, dtype=float)
    # rows: weight decay 0, 0.1; columns: init scale 1, 8
    assert math.isnan(z[0, 1]) and hm.text[0][1] == "×"
    assert z[0, 0] == pytest.approx(np.mean([_gap(1.0, 0.0, k) for k in SEEDS]))
    (marks,) = [t for t in heat.figure.data if t.type == "scatter"]
    assert list(marks.x) == ["8"] and list(marks.y) == ["0"] and list(marks.text) == [NOT_REACHED]
    (curve_a, curve_b, missing) = line.figure.data
    assert curve_a.y[1] is None and list(missing.x) == [8.0]


def test_the_page_carries_the_values_and_renders_in_a_browser(stored_sweep, tmp_path):
    html = render_sweep_report(sweep_table(stored_sweep, "ph"))
    assert 'data-figure="phase-grokking-gap"' in html
    assert f"data-status='{NOT_REACHED}'" in html
    path = write_sweep_report(stored_sweep, "ph", tmp_path / "out" / "ph.html")
    chromium = "/usr/bin/chromium"
    playwright = pytest.importorskip("playwright.sync_api")
    import os

    if not os.path.isfile(chromium):
        pytest.skip("no Chromium")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-figures-rendered]", state="attached", timeout=60_000)
        assert page.get_attribute("body", "data-figures-rendered") == "2"
        box = page.locator(
            "figure[data-figure='phase-grokking-gap'] .main-svg"
        ).first.bounding_box()
        assert box["width"] > 200 and box["height"] > 200
        value = page.get_attribute(
            f"td[data-point='{point_name('ph', {'init_scale': 1.0, 'weight_decay': 0.1, 'seed': 1})}']"
            "[data-quantity='grokking_gap']",
            "data-value",
        )
        assert json.loads(value) == _gap(1.0, 0.1, 1)
        browser.close()
    assert errors == []


def test_terminal_table_shows_what_the_chart_shows(stored_sweep):
    from rich.console import Console

    from splinescope.sweep.commands import print_sweep_table

    console = Console(record=True, width=200)
    print_sweep_table(stored_sweep, "ph", console)
    rows = {
        tuple(c.strip() for c in line.split("│")[1:3]): [c.strip() for c in line.split("│")[3:5]]
        for line in console.export_text().splitlines()
        if line.startswith("│")
    }
    assert rows == {
        ("1.0", "0.0"): ["2/2", "1.5"],
        ("1.0", "0.1"): ["2/2", "2.5"],
        ("8.0", "0.0"): ["2/2", "×"],  # not reached in both seeds: marked, not a number
        ("8.0", "0.1"): ["2/2", "16.5"],
    }
