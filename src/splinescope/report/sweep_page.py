"""The HTML report of a sweep: its spec, the table of points and the phase charts.

Same page conventions as the run report (:mod:`splinescope.report.html`): one
self-contained file, ``<figure data-figure=SLUG>`` per chart, and table cells carrying
``data-point``, ``data-quantity``, ``data-status`` and ``data-value`` (JSON) for tools.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path

from splinescope.errors import SplinescopeError
from splinescope.report.html import _CSS, _RENDER_JS, _e, _figure_html, _json_attr, _plotly_js
from splinescope.report.phase import (
    VALUE,
    SweepTable,
    chosen_quantities,
    phase_figures,
    sweep_table,
)
from splinescope.store.rundata import format_number, format_time
from splinescope.sweep.spec import format_value


def _spec_html(table: SweepTable) -> str:
    spec = table.record.spec
    axes = [
        f"<li><b>{_e(k)}</b>: {_e(', '.join(format_value(v) for v in vs))}</li>"
        for k, vs in spec.get("grid", {}).items()
    ]
    for group in spec.get("zip", []):
        axes.append(
            "<li>zipped: "
            + "; ".join(
                f"<b>{_e(k)}</b>: {_e(', '.join(format_value(v) for v in vs))}"
                for k, vs in group.items()
            )
            + "</li>"
        )
    if spec.get("seeds"):
        axes.append(f"<li><b>seed</b>: {_e(', '.join(str(s) for s in spec['seeds']))}</li>")
    fixed = ", ".join(f"{k} = {format_value(v)}" for k, v in spec.get("set", {}).items())
    counts = table.points["state"].value_counts().to_dict()
    return (
        f"<p class='meta'>base <code>{_e(spec.get('base'))}</code>"
        + (f" · fixed: <code>{_e(fixed)}</code>" if fixed else "")
        + f" · {len(table.points)} points: "
        + ", ".join(f"{n} {_e(s)}" for s, n in counts.items())
        + f"</p><ul>{''.join(axes)}</ul>"
        + (f"<p>{_e(spec['description'])}</p>" if spec.get("description") else "")
    )


def _points_html(table: SweepTable, quantities: Sequence[str]) -> str:
    axes = list(table.axes)
    head = "".join(f"<th>{_e(a)}</th>" for a in axes) + "<th>state</th><th>run</th>"
    head += "".join(f"<th>{_e(table.labels.get(q, q))}</th>" for q in quantities)
    body = []
    for row in table.points.itertuples(index=False):
        cells = "".join(f"<td>{_e(format_value(getattr(row, a)))}</td>" for a in axes)
        cells += f"<td>{_e(row.state)}</td><td><code>{_e(row.run_id or '—')}</code></td>"
        for q in quantities:
            status = table.status.loc[row.point, q]
            value = table.values.loc[row.point, q]
            text = format_number(value) if status == VALUE else status
            cls = "num" if status == VALUE else "nr"
            cells += (
                f"<td class='{cls}' data-point='{_e(row.point)}' data-quantity='{_e(q)}' "
                f"data-status='{_e(status)}' data-value='{_json_attr(value if status == VALUE else None)}'>"
                f"{_e(text)}</td>"
            )
        body.append(f"<tr>{cells}</tr>")
    return (
        '<section id="points"><h2>Points</h2><div style="overflow-x:auto">'
        f"<table class='points'><tr>{head}</tr>{''.join(body)}</table></div></section>"
    )


def render_sweep_report(table: SweepTable, quantities: Sequence[str] | None = None) -> str:
    """The whole HTML document of a sweep's report."""
    from splinescope import __version__

    chosen = chosen_quantities(table, quantities)
    wanted = table.record.spec.get("report", {}).get("quantities", [])
    absent = [q for q in wanted if q not in chosen] if not quantities else []
    note = (
        f"<p class='notice warn'>Not drawn, not logged by any finished run yet: "
        f"{_e(', '.join(absent))}</p>"
        if absent
        else ""
    )
    figures = phase_figures(table, chosen)
    name = table.record.name
    fig_html = "".join(_figure_html(f) for f in figures)
    body = "\n".join(
        [
            f"<header><h1>sweep {_e(name)}</h1></header>",
            _spec_html(table),
            note,
            f'<section id="phase"><h2>Phase charts</h2>{fig_html or "<p>No axis to draw.</p>"}</section>',
            _points_html(table, chosen),
            f"<footer>Written by splinescope {__version__} on "
            f"{_e(format_time(_dt.datetime.now(_dt.timezone.utc)))}. Self-contained.</footer>",
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>splinescope sweep: {_e(name)}</title><style>{_CSS}</style>"
        f"<script>{_plotly_js()}</script></head>"
        f"<body data-figures='{len(figures)}'><main>{body}</main>"
        f"<script>{_RENDER_JS}</script></body></html>\n"
    )


def write_sweep_report(
    runs_dir: str | os.PathLike,
    sweep: str,
    output: str | os.PathLike,
    quantities: Sequence[str] | None = None,
) -> Path:
    """Write sweep ``sweep``'s report to ``output`` (whole or not at all); return its path."""
    output = Path(output).expanduser()
    if output.is_dir():
        raise SplinescopeError(f"output {str(output)!r} is a directory; give a file path")
    text = render_sweep_report(sweep_table(runs_dir, sweep), quantities)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.parent / f".{output.name}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    except OSError as err:
        raise SplinescopeError(
            f"output {str(output)!r} is not writable: {err.strerror or err}"
        ) from err
    return output.resolve()
