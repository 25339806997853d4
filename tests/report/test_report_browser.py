"""The report opened in a real headless Chromium (Debian's package, driven by playwright
with ``executable_path``; no browser download): no console errors, no network requests,
every figure drawn with non-zero size, the numbers on the page equal the store's, still
whole when laid out for print. Screenshots and a PDF go to ``test-artifacts/``.

Skips only where no Chromium executable exists; under CI (CI set) that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from splinescope.report import report_command
from splinescope.store import load_metrics, load_runs, resolve_run

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]


def _chromium() -> str:
    candidates = [os.environ.get("SPLINESCOPE_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    message = (
        "Chromium not found (looked at $SPLINESCOPE_CHROMIUM, /usr/bin/chromium, chromium, "
        "chromium-browser); install Debian's package: apt-get install -y chromium"
    )
    if os.environ.get("CI"):
        pytest.fail("CI must install Chromium for the report's browser test. " + message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, path: Path, media: str = "screen"):
    """Open a file:// page, refusing every non-file request; return page, console, requests."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    console: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.emulate_media(media=media)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-figures-rendered]", state="attached", timeout=60_000)
    return page, console, requests


def _figure_sizes(page) -> dict[str, tuple[float, float]]:
    """Visible drawn size of every figure: plotly's SVG clipped to its container for plots,
    the decoded image for pictures."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('figure[data-figure]')].map(f => {
            const svg = f.querySelector('svg.main-svg');
            const img = f.querySelector('img');
            let w = 0, h = 0;
            if (svg) {
              const r = svg.getBoundingClientRect();
              const c = f.querySelector('.plot').getBoundingClientRect();
              w = Math.min(r.right, c.right) - Math.max(r.left, c.left);
              h = Math.min(r.bottom, c.bottom) - Math.max(r.top, c.top);
              if (h < r.height - 1 || w < r.width - 1) { w = -w; h = -h; }  // clipped
            }
            if (img && img.complete && img.naturalWidth > 0) {
              const r = img.getBoundingClientRect(); w = r.width; h = r.height; }
            return [f.dataset.figure, [w, h]];
        }))"""
    )


def _print_layout(page) -> None:
    """Lay the page out as printed on A4 landscape with 10 mm margins (1047 x 718 CSS px),
    redrawing the plots as a browser's beforeprint does."""
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 1047, "height": 718})
    page.evaluate(
        "() => Promise.all([...document.querySelectorAll('.plot')].map(d => Plotly.Plots.resize(d)))"
    )


def _values(page, attr: str) -> list[dict]:
    return page.evaluate(
        f"""() => [...document.querySelectorAll('[{attr}]')].map(e => ({{
            run: e.dataset.run, key: e.getAttribute('{attr}'),
            value: JSON.parse(e.dataset.value), text: e.textContent.trim()}}))"""
    )


@pytest.mark.slow
def test_single_run_report_renders_in_chromium(browser, runs_dir, tmp_path):
    out = report_command(["grok-digits"], runs_dir, tmp_path / "grok-digits.html")
    page, console, requests = _open(browser, out)
    try:
        assert console == [] and requests == []
        n = int(page.get_attribute("body", "data-figures"))
        # ten plots and the paper view (LC phases were detected)
        assert n == 11 and page.get_attribute("body", "data-figures-rendered") == str(n)
        sizes = _figure_sizes(page)
        assert len(sizes) == n + 6  # eleven plots and six partition pictures
        assert all(w > 100 and h > 100 for w, h in sizes.values()), sizes
        traces = page.evaluate(
            "() => [...document.querySelectorAll('.plot')].map(d => d.querySelectorAll('.trace').length)"
        )
        assert all(t > 0 for t in traces)

        run_id = resolve_run(runs_dir, "grok-digits")
        summary = load_runs(runs_dir).set_index("run_id").loc[run_id, "summary"]
        shown = _values(page, "data-summary-key")
        assert {c["key"]: c["value"] for c in shown} == summary
        for c in shown:
            v = summary[c["key"]]
            if isinstance(v, str):
                assert c["text"] == v
            elif isinstance(v, dict):  # per-curve phases: tabulated in the paper view
                assert c["text"] == f"{len(v)} curve(s): see the paper view"
            else:
                assert float(c["text"].replace(",", "")) == pytest.approx(v, rel=1e-3)
        last = load_metrics(runs_dir, run_id).sort_values("step").groupby(["probe", "key"]).last()
        metrics = _values(page, "data-metric")
        assert len(metrics) >= 10
        for c in metrics:
            expected = last.loc[tuple(c["key"].split("/", 1)), "value"]
            assert c["value"] == expected
            assert float(c["text"].replace(",", "")) == pytest.approx(expected, rel=1e-3)
        visible = page.inner_text("#glance")
        assert (
            f"Test accuracy settled at its final level (final plateau {summary['test_plateau']:.4g}) at step {summary['generalization_step']:,}"
            in visible
        )

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-grok-digits.png"), full_page=True)
        _print_layout(page)
        page.pdf(
            path=str(ARTIFACTS / "report-grok-digits.pdf"),
            format="A4",
            landscape=True,
            print_background=True,
        )
        assert (ARTIFACTS / "report-grok-digits.png").stat().st_size > 50_000
    finally:
        page.close()


@pytest.mark.slow
def test_print_layout_keeps_every_figure_within_the_page(browser, runs_dir, tmp_path):
    out = report_command(["grok-digits", "grok-digits-live"], runs_dir, tmp_path / "two.html")
    page, console, requests = _open(browser, out, media="print")
    try:
        assert console == [] and requests == []
        _print_layout(page)
        sizes = _figure_sizes(page)
        bad = {k: v for k, v in sizes.items() if not (0 < v[0] <= 1047 and v[1] > 100)}
        assert sizes and not bad, bad
        # each figure, caption included, fits on one A4 landscape page (718 px high)
        heights = page.evaluate(
            "() => [...document.querySelectorAll('figure.fig')].map(f => f.getBoundingClientRect().height)"
        )
        assert heights and max(heights) <= 718, heights
        live = page.locator("[data-live]")
        assert live.count() == 1 and "Live run" in live.inner_text()
        rows = page.evaluate("() => document.querySelectorAll('table.comparison tr').length")
        assert rows == 3
        modebar = page.evaluate(
            "() => [...document.querySelectorAll('.modebar-container')].every(e => getComputedStyle(e).display === 'none')"
        )
        assert modebar
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-two-runs-print.png"), full_page=True)
    finally:
        page.close()


def test_report_without_figures_still_opens_cleanly(browser, runs_dir, tmp_path):
    out = report_command(["fresh"], runs_dir, tmp_path / "fresh.html")
    page, console, requests = _open(browser, out)
    try:
        assert console == [] and requests == []
        assert page.get_attribute("body", "data-figures-rendered") == "0"
        assert "No metrics logged yet" in page.inner_text("[data-no-metrics]")
        assert json.loads(page.evaluate("() => JSON.stringify(typeof Plotly)")) == "object"
    finally:
        page.close()


def test_the_harness_sees_a_broken_figure_and_a_network_request(browser, runs_dir, tmp_path):
    """The checks above can fail: a figure that cannot be drawn is a console error and is not
    counted as rendered; a resource fetched from the network is caught."""
    text = report_command(["grok-digits-live"], runs_dir, tmp_path / "ok.html").read_text()
    n = int(re.search(r"<body data-figures='(\d+)'>", text).group(1))
    broken = text.replace('data-plot="plot-loss"', 'data-plot="plot-missing"', 1)
    broken = broken.replace("<footer>", '<img src="http://example.invalid/x.png"><footer>', 1)
    path = tmp_path / "broken.html"
    path.write_text(broken, encoding="utf-8")
    page, console, requests = _open(browser, path)
    try:
        assert page.get_attribute("body", "data-figures-rendered") == str(n - 1)
        assert any("figure plot-missing failed to render" in c for c in console), console
        assert requests == ["http://example.invalid/x.png"]
    finally:
        page.close()
