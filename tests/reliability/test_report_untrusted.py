"""The report treats every string from a user or a run as untrusted text: run names, config
and environment values, dataset names, probe names and keys, error messages and tracebacks.
Opened in a real headless Chromium: no dialog opens, no injected element or handler exists,
no script but the report's own is present, no network request is made, and every payload
reads on the page as the literal text it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from splinescope.report import report_command
from splinescope.store import RunStore

RUN_NAME = "<img src=x onerror=alert(1);window.__pwned=1>"
CONFIG_VALUE = "</script><script>alert(2);window.__pwned=2</script>"
DATASET = "<svg onload=alert(3)>"
PROBE = "<b onmouseover=alert(4)>probe</b>"
KEY = "</script><img src=y onerror=alert(5)>"
TRACEBACK = "Traceback:\n<script>alert(6);window.__pwned=6</script>\n"
LINK = "<a href='http://example.invalid/x'>click</a>"
PAYLOADS = (RUN_NAME, CONFIG_VALUE, DATASET, PROBE, KEY, TRACEBACK.strip(), LINK)


def _hostile_store(runs_dir: Path) -> str:
    with RunStore(runs_dir) as store:
        run_id = store.create_run(
            RUN_NAME,
            {"name": RUN_NAME, "dataset": DATASET, "description": CONFIG_VALUE, LINK: 1},
            seed=0,
            env={"host_note": CONFIG_VALUE},
        )
        for step in (0, 1, 10, 100):
            store.log_scalars(run_id, step, PROBE, {KEY: float(step), LINK: 1.0 / (1 + step)})
            store.log_scalars(run_id, step, "accuracy", {"train_acc": 0.5, "test_acc": 0.4})
        store.log_array(run_id, 100, PROBE, KEY, np.arange(6.0).reshape(2, 3))
        store.log_error(run_id, 10, PROBE, f"ValueError: {RUN_NAME}", TRACEBACK)
        store.set_summary(run_id, {"interpolation_step": 10, CONFIG_VALUE: RUN_NAME})
        store.set_status(run_id, "finished")
    return run_id


def test_payloads_are_escaped_in_the_html(tmp_path):
    _hostile_store(tmp_path / "runs")
    out = report_command([RUN_NAME], tmp_path / "runs", tmp_path / "r.html")
    text = out.read_text()
    for payload in PAYLOADS:
        assert payload not in text, payload  # never verbatim: escaped in HTML, \u003c in JSON
    assert text.count("<script") == 2 + text.count('<script type="application/json"')


@pytest.mark.slow
def test_payloads_render_as_text_in_chromium(tmp_path):
    from browser_shim import browser_page

    _hostile_store(tmp_path / "runs")
    out = report_command([RUN_NAME], tmp_path / "runs", tmp_path / "r.html")
    with browser_page(out) as (page, console, requests, dialogs):
        page.wait_for_timeout(500)
        assert dialogs == [] and requests == []
        assert page.evaluate("() => window.__pwned") is None
        found = page.evaluate(
            """() => {
              const bad = [];
              for (const el of document.querySelectorAll('*')) {
                for (const a of el.attributes) {
                  if (a.name.startsWith('on')) bad.push(el.tagName + ' ' + a.name);
                }
              }
              const scripts = [...document.scripts].filter(
                s => s.type !== 'application/json').length;
              const injected = document.querySelectorAll(
                'img[src="x"], img[src="y"], svg[onload], a[href^="http://example"], .plot svg a'
              ).length;
              return {bad, scripts, injected};
            }"""
        )
        assert found == {"bad": [], "scripts": 2, "injected": 0}, found
        body = page.evaluate("() => document.body.innerText")
        for payload in (RUN_NAME, CONFIG_VALUE, DATASET, PROBE, KEY, LINK):
            assert payload in body, payload
        plots = page.evaluate(
            "() => [...document.querySelectorAll('.plot')].map(p => p.textContent).join(' ')"
        )
        for payload in (PROBE, KEY, LINK):  # the figures' titles and legends, drawn by plotly
            assert payload in plots, payload
        assert page.get_attribute("body", "data-figures") == page.get_attribute(
            "body", "data-figures-rendered"
        )
        assert not [c for c in console if c.startswith(("error", "pageerror"))], console
