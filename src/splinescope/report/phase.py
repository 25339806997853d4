"""Phase charts of a sweep: a phenomenon or a final value over the sweep's axes.

``sweep_table`` reads a stored sweep into one value per point and quantity, with a status
that says why a value is missing; ``phase_figures`` draws, for two axes, a heat map per
quantity (the other axes as small multiples, seeds averaged) and, for one axis, line charts.

Quantities:

* phenomena of the run summary (:mod:`splinescope.analysis.phenomena`): interpolation and
  generalization steps, grokking gap, LC peak and descent steps, ...; "not reached" is a
  status, never a value: such cells are marked (grey "×"), not coloured as zero;
* ``lc_descent_ratio``: LC's final plateau / its peak (1: no descent; small: deep descent);
* ``PROBE/KEY``: the final plateau of a logged scalar (median of the last 10 % of the
  logged steps, as the phenomena define it), labelled as its probe declared it.

A cell aggregates the points that share its coordinates (the seeds): the mean of those with
a value; "k/n" when only k of n have one; the shared status when none has.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from splinescope.analysis.phenomena import NOT_REACHED, UNDEFINED, final_plateau
from splinescope.report import _plotting as P
from splinescope.report.figures import ReportFigure
from splinescope.report.phenomena import PHENOMENA
from splinescope.store.sweeps import SweepRecord, load_sweep
from splinescope.sweep.spec import format_value

VALUE = "value"
NO_RUN = "no run"
FAILED = "failed"
NOT_LOGGED = "not logged"
DERIVED = {"lc_descent_ratio": "LC final / peak (descent ratio)"}
#: Quantities drawn when the spec names none, where the sweep logged them.
DEFAULT_QUANTITIES = (
    "grokking_gap",
    "generalization_step",
    "lc_descent_ratio",
    "accuracy/test_acc",
    "lc/train_total",
    "codes/redundancy_ratio",
    "codes/knn_test",
)


@dataclass(frozen=True)
class SweepTable:
    """A sweep read for its phase charts.

    ``points``: one row per point (point, state, run_status, run_id and one column per
    axis, values as recorded); ``values``: float per (point, quantity), NaN where there is
    none; ``status``: ``"value"`` or why not ("not reached", "undefined", "no run",
    "failed", "not logged"); ``labels``: quantity -> readable label.
    """

    record: SweepRecord
    points: pd.DataFrame
    values: pd.DataFrame
    status: pd.DataFrame
    labels: dict[str, str]

    @property
    def axes(self) -> tuple[str, ...]:
        return self.record.axes


def _scalar_labels(runs_dir: Any, run_id: str) -> dict[tuple[str, str], str]:
    from splinescope.monitor.registry import Outputs
    from splinescope.store import load_probes

    out = {}
    for name, spec in load_probes(runs_dir, run_id).items():
        outputs = Outputs.from_dict(spec.get("outputs", {}))
        for family in outputs.scalars:
            out[(name, family.pattern)] = family.label
    return out


def _label(labels: dict[tuple[str, str], str], probe: str, key: str) -> str:
    import fnmatch

    for (p, pattern), label in labels.items():
        if p == probe and fnmatch.fnmatchcase(key, pattern):
            return f"final {label}" + (f" ({key})" if pattern != key else "")
    return f"final {probe}/{key}"


def sweep_table(runs_dir: str | os.PathLike, sweep: str) -> SweepTable:
    """Read sweep ``sweep`` and its runs' summaries and final values from the store."""
    from splinescope.store import get_run, load_metrics

    record = load_sweep(runs_dir, sweep)
    rows, values, status = [], {}, {}
    labels: dict[str, str] = {
        k: f"{label} step" if is_step else label for k, (label, is_step) in PHENOMENA.items()
    } | dict(DERIVED)
    scalar_labels: dict[tuple[str, str], str] = {}
    for p in record.points.itertuples(index=False):
        rows.append(
            {
                "point": p.point,
                "state": p.state,
                "run_status": p.run_status,
                "run_id": p.run_id,
                **{a: p.coords.get(a) for a in record.axes},
            }
        )
        v: dict[str, float] = {}
        s: dict[str, str] = {}
        values[p.point], status[p.point] = v, s
        if p.run_id is None or p.run_status != "finished":
            s["*"] = FAILED if p.state == "failed" else NO_RUN  # partial data is not drawn
            continue
        summary = get_run(runs_dir, p.run_id)["summary"] or {}
        for key in PHENOMENA:
            if key in summary:
                value = summary[key]
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    v[key], s[key] = float(value), VALUE
                else:
                    s[key] = NOT_REACHED if value == NOT_REACHED else UNDEFINED
        peak, final = summary.get("lc_peak_value"), summary.get("lc_final_value")
        if isinstance(peak, (int, float)) and isinstance(final, (int, float)) and peak > 0:
            v["lc_descent_ratio"], s["lc_descent_ratio"] = final / peak, VALUE
        if not scalar_labels:
            scalar_labels = _scalar_labels(runs_dir, p.run_id)
        metrics = load_metrics(runs_dir, p.run_id)
        for (probe, key), frame in metrics.groupby(["probe", "key"], sort=False):
            q = f"{probe}/{key}"
            value = final_plateau(frame["value"].to_numpy(), steps=frame["step"].to_numpy())
            if math.isfinite(value):
                v[q], s[q] = value, VALUE
            labels.setdefault(q, _label(scalar_labels, probe, key))
    quantities = list(dict.fromkeys(q for d in status.values() for q in d if q != "*"))
    value_frame = pd.DataFrame(
        [[values[p].get(q, np.nan) for q in quantities] for p in values],
        index=list(values),
        columns=quantities,
        dtype=np.float64,
    )
    status_frame = pd.DataFrame(
        [[status[p].get("*") or status[p].get(q, NOT_LOGGED) for q in quantities] for p in status],
        index=list(status),
        columns=quantities,
    )
    return SweepTable(record, pd.DataFrame(rows), value_frame, status_frame, labels)


def chosen_quantities(table: SweepTable, wanted: Sequence[str] | None = None) -> list[str]:
    """``wanted`` (all must exist: SplinescopeError naming the unknown ones otherwise), or
    the spec's ``[report] quantities``, or the defaults the sweep logged."""
    from splinescope.errors import SplinescopeError

    have = list(table.values.columns)
    if not wanted:
        spec_wanted = table.record.spec.get("report", {}).get("quantities", [])
        if spec_wanted:
            return [q for q in spec_wanted if q in have]  # the page lists the others
    if wanted:
        unknown = [q for q in wanted if q not in have]
        if unknown:
            raise SplinescopeError(
                f"quantities {unknown} are not in sweep {table.record.name!r}; it has: "
                f"{', '.join(have)}"
            )
        return wanted
    return [q for q in DEFAULT_QUANTITIES if q in have]


@dataclass(frozen=True)
class Cell:
    """One drawn cell: the mean of the values present, how many points had one, of how
    many, and the status when none had."""

    value: float
    n_values: int
    n_points: int
    status: str

    @property
    def text(self) -> str:
        if self.n_values == 0:
            return "×" if self.status == NOT_REACHED else self.status
        text = format_value(round(self.value, 3) if abs(self.value) < 1e4 else round(self.value))
        return (
            text if self.n_values == self.n_points else f"{text} ({self.n_values}/{self.n_points})"
        )


def cell(table: SweepTable, points: Sequence[str], quantity: str) -> Cell:
    """The aggregate of ``quantity`` over ``points`` (see the module docstring)."""
    if not points:
        return Cell(math.nan, 0, 0, NO_RUN)
    status = table.status.loc[list(points), quantity]
    have = status == VALUE
    if have.any():
        vals = table.values.loc[list(points), quantity][have.to_numpy()]
        return Cell(float(vals.mean()), int(have.sum()), len(points), VALUE)
    common = status.value_counts().index[0]
    return Cell(math.nan, 0, len(points), str(common))


def _levels(table: SweepTable, axis: str) -> list[Any]:
    spec = table.record.spec
    for name, values in spec.get("grid", {}).items():
        if name == axis:
            return list(values)
    for group in spec.get("zip", []):
        if axis in group:
            return list(group[axis])
    if axis == "seed" and spec.get("seeds"):
        return list(spec["seeds"])
    return list(dict.fromkeys(table.points[axis]))


def _key(value: Any) -> str:
    return format_value(value)


def _select(table: SweepTable, fixed: dict[str, Any]) -> list[str]:
    mask = np.ones(len(table.points), dtype=bool)
    for axis, value in fixed.items():
        mask &= table.points[axis].map(_key).to_numpy() == _key(value)
    return table.points["point"][mask].tolist()


def plot_axes(table: SweepTable) -> tuple[str | None, str | None, list[str]]:
    """(x, y, facet axes): the spec's ``[report]`` x and y, else the first two axes other
    than ``seed``; the remaining non-seed axes make the small multiples."""
    report = table.record.spec.get("report", {})
    axes = [a for a in table.axes if a != "seed"]
    x = report.get("x") or (axes[0] if axes else None)
    rest = [a for a in axes if a != x]
    y = report.get("y") or (rest[0] if rest else None)
    return x, y, [a for a in rest if a != y]


def _facets(table: SweepTable, facet_axes: Sequence[str]) -> list[dict[str, Any]]:
    levels = [_levels(table, a) for a in facet_axes]
    return [dict(zip(facet_axes, combo, strict=True)) for combo in itertools.product(*levels)]


def _facet_title(facet: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_key(v)}" for k, v in facet.items()) or ""


def heatmap_figure(
    table: SweepTable, quantity: str, x: str, y: str, facet_axes: Sequence[str]
) -> ReportFigure:
    """Heat map of ``quantity`` over ``x`` x ``y``, one panel per facet; unreached cells
    carry a grey "×" (hover: the status), cells without runs their status as text."""
    facets = _facets(table, facet_axes)
    cols = min(3, len(facets))
    rows = math.ceil(len(facets) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[_facet_title(f) for f in facets] if facet_axes else None,
        horizontal_spacing=0.08,
        vertical_spacing=0.12,
    )
    xs, ys = _levels(table, x), _levels(table, y)
    xl, yl = [_key(v) for v in xs], [_key(v) for v in ys]
    label = table.labels.get(quantity, quantity)
    legend_done = False
    for i, facet in enumerate(facets):
        r, c = i // cols + 1, i % cols + 1
        z = np.full((len(ys), len(xs)), np.nan)
        text = [["" for _ in xs] for _ in ys]
        marks: list[tuple[str, str, str]] = []
        for (iy, yv), (ix, xv) in itertools.product(enumerate(ys), enumerate(xs)):
            got = cell(table, _select(table, {**facet, x: xv, y: yv}), quantity)
            z[iy, ix] = got.value
            text[iy][ix] = got.text
            if got.n_values == 0:
                marks.append((xl[ix], yl[iy], got.status))
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=xl,
                y=yl,
                text=text,
                texttemplate="%{text}",
                coloraxis="coloraxis",
                hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{label}: %{{text}}<extra></extra>",
                xgap=2,
                ygap=2,
            ),
            row=r,
            col=c,
        )
        if marks:
            fig.add_trace(
                go.Scatter(
                    x=[m[0] for m in marks],
                    y=[m[1] for m in marks],
                    mode="markers+text",
                    marker=dict(symbol="x-thin-open", size=22, color="#777", line=dict(width=2)),
                    text=[m[2] for m in marks],
                    textposition="bottom center",
                    textfont=dict(size=10, color="#555"),
                    name="not reached / no value",
                    legendgroup="nr",
                    showlegend=not legend_done,
                    hovertemplate="%{x}, %{y}: %{text}<extra></extra>",
                ),
                row=r,
                col=c,
            )
            legend_done = True
        fig.update_xaxes(title_text=x, type="category", row=r, col=c)
        fig.update_yaxes(title_text=y, type="category", row=r, col=c)
    P.style(fig, f"{label} over {x} × {y}", n_rows=rows, log_x=False)
    fig.update_layout(
        coloraxis=dict(colorscale="Viridis", colorbar=dict(title=dict(text=_wrapped(label)))),
        legend=dict(orientation="h", x=0, y=-0.15, yanchor="top"),
    )
    seeds = " Seeds are averaged (k/n: k of n seeds had a value)." if "seed" in table.axes else ""
    return ReportFigure(
        slug=f"phase-{_slug(quantity)}",
        title=f"{label}: {x} × {y}",
        caption=f"{label} at every {x} × {y} of sweep {table.record.name}"
        + (f", one panel per {', '.join(facet_axes)}" if facet_axes else "")
        + f". Grey × marks cells where it was not reached (never coloured as zero).{seeds}",
        figure=fig,
    )


def _wrapped(text: str, width: int = 18) -> str:
    """``text`` broken into lines of at most ~``width`` characters (plotly's ``<br>``)."""
    import textwrap

    return "<br>".join(textwrap.wrap(text, width)) or text


def _slug(quantity: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in quantity).strip("-").lower()


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def line_figure(
    table: SweepTable, quantity: str, x: str, group_axes: Sequence[str]
) -> ReportFigure:
    """``quantity`` along ``x``, one line per combination of ``group_axes``; points with no
    value are drawn as grey × at the bottom of the panel (hover: why)."""
    xs = _levels(table, x)
    numeric = _numeric(xs)
    xv = xs if numeric else [_key(v) for v in xs]
    label = table.labels.get(quantity, quantity)
    fig = go.Figure()
    groups = _facets(table, group_axes)
    found: list[float] = []
    missing: list[tuple[Any, str, str]] = []
    for i, group in enumerate(groups):
        cells = [cell(table, _select(table, {**group, x: v}), quantity) for v in xs]
        ys = [c.value if c.n_values else None for c in cells]
        found += [c.value for c in cells if c.n_values]
        name = _facet_title(group) or label
        fig.add_trace(
            go.Scatter(
                x=xv,
                y=ys,
                mode="lines+markers",
                name=name,
                line=dict(color=P.color(i)),
                text=[c.text for c in cells],
                hovertemplate=f"{name}<br>{x}=%{{x}}: %{{text}}<extra></extra>",
            )
        )
        missing += [(xv[j], name, c.status) for j, c in enumerate(cells) if not c.n_values]
    if missing:
        low = min(found) if found else 0.0
        fig.add_trace(
            go.Scatter(
                x=[m[0] for m in missing],
                y=[low] * len(missing),
                mode="markers",
                marker=dict(symbol="x-thin-open", size=14, color="#777", line=dict(width=2)),
                name="not reached / no value (drawn at the lowest value)",
                text=[f"{m[1]}: {m[2]}" for m in missing],
                hovertemplate="%{x}: %{text}<extra></extra>",
            )
        )
    P.style(fig, f"{label} along {x}", log_x=False)
    if numeric and min(xs) > 0 and max(xs) / min(xs) >= 20:
        # Ticks at the grid's own levels: plotly's log ticks label 20 as "2".
        fig.update_xaxes(type="log", tickvals=list(xs), ticktext=[_key(v) for v in xs])
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=_wrapped(label, 40))
    return ReportFigure(
        slug=f"line-{_slug(quantity)}-{_slug(x)}",
        title=f"{label} along {x}",
        caption=f"{label} against {x} in sweep {table.record.name}"
        + (f", one line per {', '.join(group_axes)}" if group_axes else "")
        + ("; seeds averaged" if "seed" in table.axes else "")
        + ". Grey × at the bottom: no value there (hover says why).",
        figure=fig,
    )


def phase_figures(table: SweepTable, quantities: Sequence[str] | None = None) -> list[ReportFigure]:
    """Heat maps (two axes or more) and line charts (one axis or more) of the quantities."""
    x, y, facets = plot_axes(table)
    if x is None:
        return []
    out = []
    for q in chosen_quantities(table, quantities):
        if y is not None:
            out.append(heatmap_figure(table, q, x, y, facets))
        out.append(line_figure(table, q, x, [a for a in (y, *facets) if a is not None]))
    return out
