"""The HTML page: self-contained, faithful to the run's numbers, honest about live or empty
runs; pictures embedded; clear errors for outputs that cannot be written."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from report import synthetic as S
from splinescope import SplinescopeError
from splinescope.report.html import render_report, write_report
from splinescope.report.images import PNG_SIGNATURE, partition_images, png_bytes
from splinescope.store.rundata import RunData


class _Cells(HTMLParser):
    """Collects (attributes, text) of every element carrying a data-value attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[dict, str]] = []
        self._open: dict | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-value" in a:
            self._open, self._text = a, ""

    def handle_data(self, data):
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag):
        if self._open is not None and tag == "td":
            self.cells.append((self._open, self._text))
            self._open = None


def _cells(page: str) -> list[tuple[dict, str]]:
    p = _Cells()
    p.feed(page)
    return p.cells


@pytest.fixture(scope="module")
def run() -> RunData:
    errors = pd.DataFrame(
        {
            "step": pd.array([100, None], dtype="Int64"),
            "probe": ["hessian", "codes"],
            "message": ["Lanczos did not converge <k=5>", "out of memory"],
            "traceback": ["Traceback ...", ""],
            "created_at": [1.0, 2.0],
        }
    )
    return RunData(
        "0123456789ab",
        "grok-digits",
        "finished",
        config={"model": {"widths": [64, 200, 10]}, "optim": {"lr": 1e-3}},
        env={"torch": "2.13.0"},
        summary=S.SUMMARY,
        metrics=S.metrics_frame(),
        arrays=S.arrays_frame(),
        errors=errors,
        created_at=1.7e9,
        updated_at=1.7e9 + 60,
    )


@pytest.fixture(scope="module")
def page(run) -> str:
    return render_report([run])


def test_page_needs_no_network(page):
    import plotly.offline

    library = plotly.offline.get_plotlyjs()
    assert library in page  # the library is inlined, not fetched
    ours = page.replace(library, "")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", ours, re.I)
    assert "<link" not in ours.lower()
    scripts = re.findall(r"<script([^>]*)>", page)
    assert all("src=" not in s for s in scripts)


def test_summary_and_last_values_on_the_page_equal_the_run(run, page):
    cells = _cells(page)
    summary = {
        a["data-summary-key"]: (json.loads(a["data-value"]), t)
        for a, t in cells
        if "data-summary-key" in a
    }
    assert {k: v for k, (v, _) in summary.items()} == S.SUMMARY
    assert summary["grokking_gap"][1] == "13.33"
    assert summary["adversarial_key"][1] == "pgd_linf_acc"
    assert summary["robustness_gap"][1] == "not reached"
    last = {
        a["data-metric"]: (json.loads(a["data-value"]), t) for a, t in cells if "data-metric" in a
    }
    assert "adversarial/pgd_linf_acc" in last and "accuracy/test_acc" in last
    for metric, (value, text) in last.items():
        probe, key = metric.split("/", 1)
        step, expected = run.last_value(probe, key)
        assert value == expected
        assert float(text.replace(",", "")) == pytest.approx(expected, rel=1e-3)
    assert all(a["data-run"] == run.run_id for a, _ in cells)


def test_every_figure_has_a_container_and_its_data(page):
    slugs = re.findall(r'<figure class="fig" data-figure="([^"]+)"', page)
    specs = re.findall(
        r'<script type="application/json" data-plot="plot-([^"]+)">(.*?)</script>', page, re.S
    )
    assert slugs == [s for s, _ in specs] and len(slugs) == 10
    assert re.search(rf"<body data-figures='{len(slugs)}'>", page)
    for _, spec in specs:
        assert json.loads(spec)["data"]


def test_partition_pictures_are_embedded_as_png(run, page):
    images = partition_images(run, max_steps=6)
    stored = [s for s, _ in run.array_steps("partition", "plane_png")]
    assert [im.step for im in images][0] == stored[0] and images[-1].step == stored[-1]
    assert len(images) == 6
    for im in images:
        assert im.data_uri in page
    assert page.count('<figure class="img"') == 6


def test_errors_are_listed_and_text_is_escaped(page):
    assert "Lanczos did not converge &lt;k=5&gt;" in page
    assert "2 probe failure(s) were recorded" in page
    assert "<td class='num'>100</td><td>hessian</td>" in page
    assert "<td class='num'>—</td><td>codes</td>" in page  # failure outside a step
    hostile = RunData(
        "x1", "<script>alert(1)</script>", "finished", metrics=S.metrics_frame(last=10)
    )
    text = render_report([hostile])
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)" in text


def test_live_run_and_run_without_metrics_are_marked():
    live = RunData("live0001", "live-run", "running", metrics=S.metrics_frame(last=300))
    page = render_report([live])
    assert 'data-live="live0001"' in page and "up to step 300" in page
    assert "<title>splinescope report: live-run (live)</title>" in page
    empty = RunData("empty001", "fresh", "running", config={"lr": 0.1})
    page = render_report([empty])
    assert 'data-no-metrics="empty001"' in page and "No metrics logged yet" in page
    assert "<body data-figures='0'>" in page and "&quot;lr&quot;" not in page and "lr" in page


def test_several_runs_get_a_comparison_table_and_a_config_diff(run):
    other = RunData(
        "fedcba987654",
        "grok-digits-wd0",
        "crashed",
        config={"model": {"widths": [64, 200, 10]}, "optim": {"lr": 3e-3}},
        summary={"interpolation_step": 300, "generalization_step": "not reached"},
        metrics=S.metrics_frame(1, 4000),
    )
    page = render_report([run, other])
    assert "<h2>Comparison</h2>" in page and "was <b>crashed</b>" in page
    cells = _cells(page)
    mine = {
        a["data-summary-key"]: json.loads(a["data-value"])
        for a, _ in cells
        if a["data-run"] == other.run_id and "data-summary-key" in a
    }
    assert mine == other.summary
    assert re.search(
        r"<tr class=differs><th>optim.lr</th><td class='val'>0.001</td><td class='val'>0.003</td>",
        page,
    )
    assert "<tr><th>model.widths</th>" in page  # equal rows are not highlighted


def test_write_report_writes_whole_file_and_refuses_bad_outputs(run, tmp_path):
    out = write_report([run], tmp_path / "deep" / "er" / "r.html")
    assert out.is_absolute() and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]  # no temporary left behind
    with pytest.raises(SplinescopeError, match="is a directory; give a file path"):
        write_report([run], tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SplinescopeError, match="output .*a-file/r.html.*cannot create its folder"):
        write_report([run], blocker / "r.html")
    with pytest.raises(SplinescopeError, match="runs is empty"):
        render_report([])


def test_png_bytes_accepts_png_files_and_images():
    png = S.partition_png(3)
    assert png_bytes(png) == png.tobytes()
    import matplotlib.image as mpimg

    for image in (np.zeros((5, 7), np.uint8), np.random.default_rng(0).random((5, 7, 3))):
        data = png_bytes(image)
        assert data.startswith(PNG_SIGNATURE)
        assert mpimg.imread(io.BytesIO(data), format="png").shape[:2] == (5, 7)
    with pytest.raises(SplinescopeError, match=r"where: a 1-D image array must hold PNG bytes"):
        png_bytes(np.arange(10, dtype=np.uint8), "where")
    with pytest.raises(SplinescopeError, match=r"cannot show an array of shape \(2, 2, 2, 2\)"):
        png_bytes(np.zeros((2, 2, 2, 2)))


def test_non_finite_last_values_are_shown_and_kept_parseable():
    metrics = S.metrics_frame(last=10)
    metrics.loc[(metrics.key == "test_acc") & (metrics.step == 10), "value"] = float("nan")
    page = render_report([RunData("nan00001", "diverged", "crashed", metrics=metrics)])
    (cell,) = [(a, t) for a, t in _cells(page) if a.get("data-metric") == "accuracy/test_acc"]
    assert json.loads(cell[0]["data-value"]) == "nan" and cell[1] == "nan"


def test_an_output_the_os_refuses_is_a_clear_error(run):
    target = Path("/sys/splinescope-report.html")  # sysfs refuses new files, even to root
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here to provide an unwritable folder")
    with pytest.raises(
        SplinescopeError,
        match=r"output '/sys/splinescope-report.html' is not writable: Permission denied",
    ):
        write_report([run], target)


def test_the_gallery_says_how_many_stored_pictures_it_leaves_out(run):
    arrays = pd.concat([run.arrays, run.arrays.assign(step=run.arrays["step"] + 1)])
    many = RunData(run.run_id, run.name, run.status, metrics=run.metrics, arrays=arrays)
    page = render_report([many])
    stored = len(many.array_steps("partition", "plane_png"))
    shown = len(re.findall(r'<figure class="img" data-figure="partition-', page))
    assert stored == 12 and shown == 6
    assert f"partition / plane_png: 6 of {stored} stored steps shown" in page
    assert "6 of 6 stored" not in render_report([run])  # nothing left out, nothing said
