"""The self-contained HTML page: one file, plotly.js vendored in, pictures as data URIs.

The page needs no network at view time and opens from a file:// URL. Machine-readable
hooks for tests and tools: every figure is a ``<figure data-figure=SLUG>``; summary cells
carry ``data-run``, ``data-summary-key`` and ``data-value`` (the store's value as JSON);
last-value cells carry ``data-run``, ``data-metric`` ("probe/key") and ``data-value``;
``<body data-figures=N>`` counts the interactive figures and ``data-figures-rendered`` is
set to how many were drawn once every one has been tried (a failure is a console error).
"""

from __future__ import annotations

import datetime as _dt
import functools
import html
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.offline

from splinescope.errors import SplinescopeError
from splinescope.report.declared import headline_series
from splinescope.report.figures import ReportFigure, all_figures
from splinescope.report.images import StoredImage, partition_images
from splinescope.report.phenomena import (
    PHENOMENA,
    criteria_items,
    summary_items,
    summary_sentences,
)
from splinescope.store.rundata import RunData, flatten, format_number, format_time

# Printed height a figure may take: an A4 landscape page with 10 mm margins is 718 CSS px
# high; the rest leaves room for a section heading kept with the figure.
PRINT_FIGURE_HEIGHT = 640

_CSS = """
:root { --fg:#1d1d1f; --muted:#5f6368; --line:#d9dce1; --bg:#fff; --accent:#1f6fb4; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 "DejaVu Sans", Helvetica, Arial, sans-serif; color:var(--fg);
  background:var(--bg); }
main { max-width:1040px; margin:0 auto; padding:20px 18px 40px; }
h1 { font-size:26px; margin:0 0 4px; } h2 { font-size:20px; margin:28px 0 8px;
  border-bottom:2px solid var(--line); padding-bottom:4px; } h3 { font-size:16px; margin:16px 0 6px; }
.meta { color:var(--muted); margin:2px 0; } code { font-size:13px; background:#f3f4f6; padding:1px 4px;
  border-radius:3px; }
.badge { display:inline-block; padding:1px 9px; border-radius:10px; font-size:13px; font-weight:bold;
  color:#fff; vertical-align:middle; }
.st-finished { background:#2e7d32; } .st-running { background:#1565c0; } .st-crashed { background:#c62828; }
.st-interrupted { background:#ef6c00; } .st-diverged { background:#6a1b9a; }
.st-other { background:#616161; }
.notice { border-left:5px solid; padding:8px 12px; margin:10px 0; background:#f7f9fc; }
.notice.live { border-color:#1565c0; } .notice.warn { border-color:#ef6c00; background:#fff8f0; }
.notice.bad { border-color:#c62828; background:#fff5f5; }
ul.glance { font-size:16px; padding-left:20px; } ul.glance li { margin:3px 0; }
table { border-collapse:collapse; margin:6px 0 12px; font-size:14px; }
th, td { border:1px solid var(--line); padding:3px 8px; text-align:left; vertical-align:top; }
th { background:#f3f4f6; } td.num { text-align:right; font-variant-numeric:tabular-nums; }
td.nr { color:var(--muted); font-style:italic; } tr.differs td { background:#fffbe6; }
.tables { display:flex; flex-wrap:wrap; gap:24px; } .tables > div { flex:1 1 300px; min-width:0; }
td.val { word-break:break-word; max-width:520px; }
figure { margin:14px 0 22px; } figcaption { color:var(--muted); font-size:13px; margin-top:2px; }
.plot { width:100%; min-height:120px; }
.gallery { display:flex; flex-wrap:wrap; gap:12px; } .gallery figure { margin:0; flex:0 1 320px; }
.gallery img { width:100%; height:auto; border:1px solid var(--line); image-rendering:auto; }
details pre { white-space:pre-wrap; font-size:12px; background:#f6f6f6; padding:6px; }
footer { color:var(--muted); font-size:12px; margin-top:30px; border-top:1px solid var(--line);
  padding-top:6px; }
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { -webkit-print-color-adjust:exact; print-color-adjust:exact; font-size:13px; }
  main { padding:0; max-width:none; }
  figure, table, .notice { break-inside:avoid; }
  figure.fig { zoom: var(--print-zoom, 1); }
  .tables { display:block; }
  .tables > div { display:inline-block; vertical-align:top; margin-right:24px; break-inside:avoid; }
  h2, h3, h2 + p { break-after:avoid; }
  .modebar, .modebar-container { display:none !important; }
  details:not(.criteria) { display:none; }
}
"""

_RENDER_JS = """
(function () {
  var specs = document.querySelectorAll('script[type="application/json"][data-plot]');
  var config = {responsive: true, displaylogo: false, displayModeBar: 'hover'};
  function failed(id, err) {
    console.error('splinescope report: figure ' + id + ' failed to render: ' + err);
    return false;
  }
  var results = [];
  specs.forEach(function (s) {
    var id = s.getAttribute('data-plot');
    try {
      var spec = JSON.parse(s.textContent);
      var div = document.getElementById(id);
      if (!div) { throw new Error('no element with id ' + id); }
      results.push(Plotly.newPlot(div, spec.data, spec.layout, config).then(
        function () { return true; }, function (err) { return failed(id, err); }));
    } catch (err) {
      results.push(Promise.resolve(failed(id, err)));
    }
  });
  Promise.all(results).then(function (ok) {
    document.body.setAttribute('data-figures-rendered', String(ok.filter(Boolean).length));
  });
  function resizeAll() {
    if (typeof Plotly === 'undefined') { return; }
    document.querySelectorAll('.plot').forEach(function (d) { Plotly.Plots.resize(d); });
  }
  window.addEventListener('beforeprint', resizeAll);
  if (window.matchMedia) {
    var mq = window.matchMedia('print');
    if (mq.addEventListener) { mq.addEventListener('change', resizeAll); }
  }
})();
"""

_STATUS_TEXT = {
    "running": "live",
    "finished": "finished",
    "crashed": "crashed",
    "interrupted": "interrupted",
    "diverged": "diverged",
}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _json_attr(value: Any) -> str:
    """The value as JSON for a data- attribute; NaN and infinities as strings ("nan")."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    return _e(json.dumps(value, default=str))


def _script_json(text: str) -> str:
    """JSON safe inside a <script> element ("<" can only occur in strings, as \\u003c)."""
    return text.replace("<", "\\u003c")


#: Plotly reads a few HTML-like tags in its text (and links, spans with styles); only these
#: formatting tags, without attributes, are left to it.
_PLOT_TAG = re.compile(r"<(?!/?(?:br|b|i|em|sup|sub|extra)\s*/?>)", re.IGNORECASE)
#: In a string that holds any other "<", only the line breaks and hover boxes of the
#: report's own templates are kept (a name like ``<b onclick=..>x</b>`` reads whole).
_PLOT_LAYOUT_TAG = re.compile(r"<(?!/?(?:br|extra)\s*/?>)", re.IGNORECASE)


def _plot_text(figure_json: str) -> str:
    """A figure's JSON with, in every string, each "<" that does not open an allowed
    formatting tag written as "&lt;", which plotly draws as "<": a run or key named
    ``<img src=x onerror=...>`` or ``<a href=...>`` is shown as text, never parsed. (The
    JSON is decoded first: plotly writes "<" as \\u003c, which no pattern on the text sees.)"""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return _PLOT_LAYOUT_TAG.sub("&lt;", value) if _PLOT_TAG.search(value) else value
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return json.dumps(clean(json.loads(figure_json)), separators=(",", ":"), ensure_ascii=False)


def _badge(status: str) -> str:
    cls = f"st-{status}" if status in _STATUS_TEXT else "st-other"
    return f'<span class="badge {cls}">{_e(_STATUS_TEXT.get(status, status))}</span>'


def _headline(runs: Sequence[RunData]) -> list[tuple[str, str, str]]:
    """(probe, key, label) of the last values shown at a glance: the probes' declared
    headline values."""
    return [(probe, key, label) for _, probe, key, label in headline_series(runs)]


def _value_cell(run: RunData, attr: str, key: str, value: Any, text: str | None = None) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    cls = "num" if numeric else "nr"
    shown = format_number(value) if text is None else text
    return (
        f'<td class="{cls}" data-run="{_e(run.run_id)}" {attr}="{_e(key)}" '
        f'data-value="{_json_attr(value)}">{_e(shown)}</td>'
    )


def _notices(run: RunData, many: bool) -> str:
    who = f"Run <b>{_e(run.name)}</b>: " if many else ""
    out = []
    if run.is_live:
        last = run.last_step
        upto = f"up to step {last:,}" if last is not None else "with no step logged yet"
        out.append(
            f'<div class="notice live" data-live="{_e(run.run_id)}">{who}<b>Live run</b> — still '
            f"training. This report shows what was stored {upto} (last update "
            f"{_e(format_time(run.updated_at))}); write it again for newer data.</div>"
        )
    if run.divergence or run.status == "diverged":
        div = dict(run.divergence or {})
        tensor = div.get("tensor")
        what = (
            "loss"
            if tensor == "loss"
            else (f"parameter <code>{_e(tensor)}</code>" if tensor else "value")
        )
        where = f" at step <b>{int(div['step']):,}</b>" if "step" in div else ""
        policy = run.config.get("on_divergence", "stop")
        after = (
            "training stopped there"
            if policy == "stop"
            else 'training went on (<code>on_divergence = "continue"</code>)'
        )
        out.append(
            f'<div class="notice bad" data-diverged="{_e(run.run_id)}">{who}The run '
            f"<b>diverged</b>{where}: a non-finite {what} ({_e(div.get('value', 'nan'))}); "
            f"{after}. Every step recorded before it is shown.</div>"
        )
    elif run.status in ("crashed", "interrupted"):
        out.append(
            f'<div class="notice bad">{who}The run was <b>{_e(run.status)}</b>; it shows the '
            "steps stored before it stopped.</div>"
        )
    if not run.has_metrics:
        out.append(
            f'<div class="notice warn" data-no-metrics="{_e(run.run_id)}">{who}<b>No metrics '
            "logged yet.</b> Only the configuration and environment can be shown.</div>"
        )
    if len(run.errors):
        out.append(
            f'<div class="notice warn">{who}{len(run.errors)} probe failure(s) were recorded; '
            'see <a href="#errors">Probe errors</a>.</div>'
        )
    return "\n".join(out)


def _glance_single(run: RunData) -> str:
    parts = ['<section id="glance"><h2>At a glance</h2>']
    sentences = summary_sentences(run.summary)
    if sentences:
        parts.append(
            '<ul class="glance">' + "".join(f"<li>{_e(s)}</li>" for s in sentences) + "</ul>"
        )
    elif run.has_metrics:
        parts.append("<p>No phenomena detected yet (the run's summary is empty).</p>")
    parts.append('<div class="tables">')
    items = summary_items(run.summary)
    if items:
        rows = "".join(
            f"<tr><th>{_e(it.label)}</th>"
            + _value_cell(run, "data-summary-key", it.key, it.value, it.text)
            + "</tr>"
            for it in items
        )
        parts.append(
            '<div><h3>Detected phenomena</h3><table class="summary">'
            f"<tr><th>phenomenon</th><th>step or ratio</th></tr>{rows}</table></div>"
        )
    head = _headline([run])
    if head:
        rows = ""
        for probe, key, label in head:
            step, value = run.last_value(probe, key)
            rows += (
                f"<tr><th>{_e(label)}</th>"
                + _value_cell(run, "data-metric", f"{probe}/{key}", value)
                + f'<td class="num">{step:,}</td></tr>'
            )
        parts.append(
            '<div><h3>Last values</h3><table class="last">'
            f"<tr><th>metric</th><th>value</th><th>at step</th></tr>{rows}</table></div>"
        )
    parts.append("</div>")
    criteria = criteria_items(run.summary)
    if criteria:
        rows = "".join(
            f"<tr><th>{_e(it.label)}</th>"
            + _value_cell(run, "data-summary-key", it.key, it.value, it.text)
            + "</tr>"
            for it in criteria
        )
        parts.append(
            "<details class='criteria'><summary>Detection criteria and reference values</summary>"
            f"<table class='criteria'>{rows}</table></details>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _glance_many(runs: Sequence[RunData], labels: Sequence[str]) -> str:
    keys = [k for k in PHENOMENA if any(k in r.summary for r in runs)]
    head = _headline(runs)
    header = (
        "<tr><th>run</th><th>status</th><th>last step</th>"
        + "".join(f"<th>{_e(PHENOMENA.get(k, (k.replace('_', ' '),))[0])}</th>" for k in keys)
        + "".join(f"<th>{_e(label)}</th>" for _, _, label in head)
        + "</tr>"
    )
    body = ""
    for run, label in zip(runs, labels, strict=True):
        cells = f"<td>{_e(label)}</td><td>{_badge(run.status)}</td>"
        last = run.last_step
        cells += f'<td class="num">{"—" if last is None else f"{last:,}"}</td>'
        for k in keys:
            if k in run.summary:
                cells += _value_cell(run, "data-summary-key", k, run.summary[k])
            else:
                cells += '<td class="nr">—</td>'
        for probe, key, _ in head:
            lv = run.last_value(probe, key)
            if lv is None:
                cells += '<td class="nr">—</td>'
            else:
                cells += _value_cell(run, "data-metric", f"{probe}/{key}", lv[1])
        body += f"<tr>{cells}</tr>"
    return (
        '<section id="glance"><h2>Comparison</h2>'
        "<p>Detected phenomena (steps) and the last logged values of each run.</p>"
        f'<div style="overflow-x:auto"><table class="summary comparison">{header}{body}</table></div>'
        "</section>"
    )


def _figure_html(fig: ReportFigure) -> str:
    spec = _script_json(_plot_text(fig.figure.to_json()))
    # A fixed container height: plotly's responsive resize (on print) fills its container.
    height = int(fig.figure.layout.height or 450)
    # Printed, a figure is shrunk (text included) to fit one A4 landscape page.
    zoom = min(1.0, PRINT_FIGURE_HEIGHT / (height + 50))
    return (
        f'<figure class="fig" data-figure="{_e(fig.slug)}" id="fig-{_e(fig.slug)}" '
        f'style="--print-zoom:{zoom:.3f}">'
        f'<div class="plot" id="plot-{_e(fig.slug)}" style="height:{height}px"></div>'
        f"<figcaption>{_e(fig.caption)}</figcaption>"
        f'<script type="application/json" data-plot="plot-{_e(fig.slug)}">{spec}</script>'
        "</figure>"
    )


def _paper_view(runs: Sequence[RunData]) -> tuple[str, int]:
    """The paper view of one run with LC phases detected (splinescope.report.paper), and the
    number of interactive figures in it."""
    from splinescope.report.paper import paper_figure, paper_tables_html

    if len(runs) != 1 or not runs[0].summary.get("lc_phases"):
        return "", 0
    fig = paper_figure(runs[0])
    section = (
        '<section id="paper-view"><h2>Paper view</h2><p>The figures of Humayun et al., '
        "“Deep Networks Always Grok and Here is Why”, from this run: local complexity per point "
        "set and radius with its three phases, accuracy and adversarial accuracy per budget, "
        "and region migration (the migration probe's heat map and frames are below).</p>"
        + (_figure_html(fig) if fig is not None else "")
        + paper_tables_html(runs[0])
        + "</section>"
    )
    return section, int(fig is not None)


def _gallery(runs: Sequence[RunData], labels: Sequence[str]) -> str:
    blocks = []
    for run, label in zip(runs, labels, strict=True):
        images: list[StoredImage] = partition_images(run)
        if not images:
            continue
        title = f"<h3>{_e(label)}</h3>" if len(runs) > 1 else ""
        cells = "".join(
            f'<figure class="img" data-figure="partition-{_e(run.run_id)}-{_e(im.key)}-{im.step}">'
            f'<img src="{im.data_uri}" alt="{_e(im.key)} at step {im.step:,}">'
            f"<figcaption>{_e(im.key)} — step {im.step:,}</figcaption></figure>"
            for im in images
        )
        shown: dict[tuple[str, str], list[StoredImage]] = {}
        for im in images:
            shown.setdefault((im.probe, im.key), []).append(im)
        counts = "".join(
            f"<p class='meta'>{_e(probe)} / {_e(key)}: {len(ims)} of {ims[0].n_stored} stored "
            "steps shown, spread over training (first and last kept).</p>"
            for (probe, key), ims in shown.items()
            if ims[0].n_stored > len(ims)
        )
        blocks.append(f'{title}{counts}<div class="gallery">{cells}</div>')
    if not blocks:
        return ""
    return (
        '<section id="partitions"><h2>Partition slices</h2><p>Linear regions of the network '
        "in 2-D slices of input space at a few steps of training.</p>"
        + "".join(blocks)
        + "</section>"
    )


def _errors(runs: Sequence[RunData], labels: Sequence[str]) -> str:
    rows = ""
    for run, label in zip(runs, labels, strict=True):
        for rec in run.errors.to_dict("records"):
            step = rec.get("step")
            step = "—" if step is None or pd.isna(step) else format_number(step)
            probe = rec.get("probe", "")
            message = rec.get("message", "")
            tb = rec.get("traceback", "")
            detail = (
                f"<details><summary>traceback</summary><pre>{_e(tb)}</pre></details>" if tb else ""
            )
            rows += (
                f"<tr><td>{_e(label)}</td><td class='num'>{_e(step)}</td>"
                f"<td>{_e(probe)}</td><td>{_e(message)}{detail}</td></tr>"
            )
    if not rows:
        return ""
    return (
        '<section id="errors"><h2>Probe errors</h2><p>Probes that failed; training went on.</p>'
        "<table><tr><th>run</th><th>step</th><th>probe</th><th>message</th></tr>"
        f"{rows}</table></section>"
    )


def _kv_table(mapping: dict[str, Any], cls: str) -> str:
    if not mapping:
        return "<p class='meta'>(empty)</p>"
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td class='val'>{_e(json.dumps(v, default=str))}</td></tr>"
        for k, v in mapping.items()
    )
    return f'<table class="{cls}">{rows}</table>'


def _settings(runs: Sequence[RunData], labels: Sequence[str]) -> str:
    if len(runs) == 1:
        run = runs[0]
        return (
            '<section id="config"><h2>Configuration and environment</h2><div class="tables">'
            f"<div><h3>Configuration</h3>{_kv_table(flatten(run.config), 'config')}</div>"
            f"<div><h3>Environment</h3>{_kv_table(flatten(run.env), 'env')}</div>"
            "</div></section>"
        )
    out = ['<section id="config"><h2>Configuration and environment</h2>']
    for title, attr in (("Configuration", "config"), ("Environment", "env")):
        flat = [flatten(getattr(r, attr)) for r in runs]
        keys = list(dict.fromkeys(k for f in flat for k in f))
        text = [[json.dumps(f[k], default=str) if k in f else "—" for f in flat] for k in keys]
        differs = [len(set(t)) > 1 for t in text]
        order = sorted(range(len(keys)), key=lambda i: not differs[i])
        header = "<tr><th>key</th>" + "".join(f"<th>{_e(lab)}</th>" for lab in labels) + "</tr>"
        body = "".join(
            f"<tr{' class=differs' if differs[i] else ''}><th>{_e(keys[i])}</th>"
            + "".join(f"<td class='val'>{_e(t)}</td>" for t in text[i])
            + "</tr>"
            for i in order
        )
        out.append(
            f"<h3>{title}</h3><p class='meta'>Rows that differ between runs come first, "
            f"highlighted.</p><div style='overflow-x:auto'><table class='{attr}'>{header}{body}"
            "</table></div>"
        )
    out.append("</section>")
    return "\n".join(out)


@functools.lru_cache(maxsize=1)
def _plotly_js() -> str:
    """plotly.js as shipped with the installed plotly package (vendored into every page)."""
    return plotly.offline.get_plotlyjs()


def render_report(runs: Sequence[RunData], generated_at: _dt.datetime | None = None) -> str:
    """The whole HTML document for one run or several (overlaid, with a comparison table)."""
    from splinescope import __version__
    from splinescope.report._plotting import run_labels

    if not runs:
        raise SplinescopeError("render_report: runs is empty; give at least one run")
    generated_at = generated_at or _dt.datetime.now(_dt.timezone.utc)
    labels = run_labels(runs)
    many = len(runs) > 1
    if many:
        title = f"splinescope report: {len(runs)} runs"
        header = f"<h1>{_e(title)}</h1>" + "".join(
            f"<p class='meta'>{_badge(r.status)} <b>{_e(lab)}</b> · id <code>{_e(r.run_id)}</code>"
            f" · last step {'—' if r.last_step is None else f'{r.last_step:,}'}</p>"
            for r, lab in zip(runs, labels, strict=True)
        )
    else:
        run = runs[0]
        title = f"splinescope report: {run.name}" + (" (live)" if run.is_live else "")
        last = "—" if run.last_step is None else f"{run.last_step:,}"
        header = (
            f"<h1>{_e(run.name)} {_badge(run.status)}</h1>"
            f"<p class='meta'>run id <code>{_e(run.run_id)}</code> · created "
            f"{_e(format_time(run.created_at))} · last update {_e(format_time(run.updated_at))}"
            f" · last step {last}</p>"
        )
    notices = "\n".join(n for r in runs if (n := _notices(r, many)))
    glance = _glance_many(runs, labels) if many else _glance_single(runs[0])
    figures = all_figures(runs)
    paper_html, n_paper = _paper_view(runs)
    fig_html = ""
    if figures:
        fig_html = (
            '<section id="figures"><h2>Training curves</h2>'
            + "".join(_figure_html(f) for f in figures)
            + "</section>"
        )
    body = "\n".join(
        [
            f"<header>{header}</header>",
            notices,
            glance,
            paper_html,
            fig_html,
            _gallery(runs, labels),
            _errors(runs, labels),
            _settings(runs, labels),
            f"<footer>Written by splinescope {__version__} on {_e(format_time(generated_at))}. "
            "Self-contained: figures are embedded and need no network.</footer>",
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='generator' content='splinescope {__version__}'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style>"
        f"<script>{_plotly_js()}</script></head>"
        f"<body data-figures='{len(figures) + n_paper}'><main>{body}</main>"
        f"<script>{_RENDER_JS}</script></body></html>\n"
    )


def write_report(runs: Sequence[RunData], output: str | Path) -> Path:
    """Render the report and write it to ``output`` (parents created); return the absolute path.

    The file is written whole or not at all (temporary file, then rename). An output that is
    a directory or cannot be written raises SplinescopeError naming it.
    """
    output = Path(output).expanduser()
    if output.is_dir():
        raise SplinescopeError(
            f"output {str(output)!r} is a directory; give a file path such as "
            f"{str(output / 'report.html')!r}"
        )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SplinescopeError(
            f"output {str(output)!r}: cannot create its folder: {err.strerror or err}"
        ) from err
    text = render_report(runs)
    tmp = output.parent / f".{output.name}.{os.getpid()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise SplinescopeError(
            f"output {str(output)!r} is not writable: {err.strerror or err}"
        ) from err
    return output.resolve()
