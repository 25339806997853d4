"""The paper view (Humayun et al., "Deep Networks Always Grok and Here is Why"): LC per point
set with its phases marked, accuracy and adversarial accuracy per budget beside it, LC at the
decision boundary, the region-migration heat map over (distance, step) and a frame slider over
the stored partition pictures of one plane. Built from the store and the declared outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from splinescope.analysis.phenomena import NOT_REACHED
from splinescope.report import _plotting as P
from splinescope.report.declared import declared, probes_of
from splinescope.report.figures import ReportFigure
from splinescope.report.images import data_uri, png_bytes
from splinescope.store.rundata import RunData, format_number

SPLITS = ("train", "test", "random")
#: How each LC phase is marked on its curve: (summary field, label, marker symbol).
PHASE_MARKS = (
    ("first_descent_end_step", "first descent ends", "triangle-down"),
    ("ascent_peak_step", "ascent peak", "triangle-up"),
    ("second_descent_onset_step", "second descent onset", "x"),
)


def _probes_of_kind(run: RunData, kind: str) -> list[str]:
    return [d.probe for d in probes_of([run]) if d.kind == kind and d.probe in run.probes()]


def _radius(run: RunData, probe: str) -> float | None:
    config = (run.probe_specs.get(probe) or {}).get("config") or {}
    radius = config.get("radius")
    return float(radius) if isinstance(radius, (int, float)) else None


def _value_at(steps: np.ndarray, values: np.ndarray, step: int) -> float | None:
    hit = np.flatnonzero(steps == step)
    return float(values[hit[0]]) if hit.size else None


def _phase_markers(
    fig: go.Figure, run: RunData, probe: str, key: str, color: str, row: int, col: int
) -> None:
    phases = (run.summary.get("lc_phases") or {}).get(f"{probe}/{key}") or {}
    steps, values = run.series(probe, key)
    for field, label, symbol in PHASE_MARKS:
        step = phases.get(field)
        if not isinstance(step, int):
            continue
        y = _value_at(steps, values, step)
        if y is None:
            continue
        fig.add_trace(
            go.Scatter(
                x=P.step_x(np.array([step])),
                y=[y],
                mode="markers",
                marker=dict(symbol=symbol, size=12, color=color, line=dict(width=1, color="#222")),
                name=label,
                legendgroup=f"phase-{field}",
                showlegend=False,
                hovertemplate=f"{key}: {label} at step {step:,}<extra>{probe}</extra>",
            ),
            row=row,
            col=col,
        )


def _lc_panels(
    fig: go.Figure, run: RunData, lc_probes: list[str], boundary: list[str]
) -> set[tuple[str, str]]:
    shown: set[tuple[str, str]] = set()
    for row, probe in enumerate(lc_probes, start=1):
        radius = _radius(run, probe)
        for i, split in enumerate(SPLITS):
            key = f"{split}_total"
            steps, values = run.series(probe, key)
            if not len(steps):
                continue
            fig.add_trace(
                P.line(steps, values, f"{split} points", P.color(i), showlegend=row == 1),
                row=row,
                col=1,
            )
            _phase_markers(fig, run, probe, key, P.color(i), row, 1)
            shown |= {(probe, key), (probe, f"{key}_sem")}
        for b in boundary:
            if radius is not None and _radius(run, b) == radius:
                steps, values = run.series(b, "boundary_total")
                fig.add_trace(
                    P.line(
                        steps, values, "decision boundary", P.color(3), "dash", showlegend=False
                    ),
                    row=row,
                    col=1,
                )
                _phase_markers(fig, run, b, "boundary_total", P.color(3), row, 1)
        label = probe if radius is None else f"LC, r = {radius:g}"
        fig.update_yaxes(title_text=label, row=row, col=1)
    for _field, label, symbol in PHASE_MARKS:  # one legend entry per phase marker
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=label,
                marker=dict(symbol=symbol, size=11, color="#888"),
            ),
            row=1,
            col=1,
        )
    return shown


def _accuracy_panel(fig: go.Figure, run: RunData, row: int) -> None:
    for probe in _probes_of_kind(run, "accuracy"):
        for i, key in enumerate(("train_acc", "test_acc")):
            steps, values = run.series(probe, key)
            if len(steps):
                fig.add_trace(
                    P.line(steps, values, key.replace("_acc", " accuracy"), P.color(i)),
                    row=row,
                    col=2,
                )
    robust = run.summary.get("delayed_robustness") or {}
    for probe in _probes_of_kind(run, "adversarial"):
        decl = declared(run, probe)
        for j, key in enumerate(k for k in run.keys(probe) if not k.startswith("train_")):
            steps, values = run.series(probe, key)
            c = P.color(4 + j)
            fig.add_trace(P.line(steps, values, decl.label(key), c, "dot"), row=row, col=2)
            found = robust.get(f"{probe}/{key}") or {}
            for field, symbol in (("min_step", "circle-open"), ("rise_step", "star")):
                step = found.get(field)
                y = _value_at(steps, values, step) if isinstance(step, int) else None
                if y is not None:
                    fig.add_trace(
                        go.Scatter(
                            x=P.step_x(np.array([step])),
                            y=[y],
                            mode="markers",
                            showlegend=False,
                            marker=dict(symbol=symbol, size=12, color=c),
                            hovertemplate=f"{key}: {field.replace('_', ' ')} {step:,}<extra></extra>",
                        ),
                        row=row,
                        col=2,
                    )
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=row, col=2)


def paper_figure(run: RunData) -> ReportFigure | None:
    """LC of every ``lc`` probe (one panel per radius; train, test, random and boundary points)
    with its phases marked, beside clean and adversarial accuracy (post-interpolation minimum
    ○ and late rise ★ per budget) and the share of region boundaries near the decision
    boundary."""
    lc_probes = _probes_of_kind(run, "lc")
    if not lc_probes:
        return None
    boundary = _probes_of_kind(run, "boundary_lc")
    migration = _probes_of_kind(run, "migration")
    rows = max(len(lc_probes), 2)
    fig = make_subplots(
        rows=rows, cols=2, shared_xaxes=True, horizontal_spacing=0.09, vertical_spacing=0.06
    )
    shown = _lc_panels(fig, run, lc_probes, boundary)
    _accuracy_panel(fig, run, 1)
    for probe in migration:
        for i, (key, label) in enumerate(
            (
                ("band_length_share", "region boundaries in the band"),
                ("band_area_share", "area in the band"),
            )
        ):
            steps, values = run.series(probe, key)
            if len(steps):
                fig.add_trace(P.line(steps, values, label, P.color(7 + i)), row=2, col=2)
        fig.update_yaxes(title_text="share near the decision boundary", row=2, col=2)
    P.style(fig, "Paper view: the phases of local complexity, accuracy and robustness", rows)
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE, row=rows, col=1)
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE, row=rows, col=2)
    return ReportFigure(
        "paper-view",
        "Paper view",
        "Left: mean LC (cut neurons of the counted layers) near train, test and random points and "
        "at decision-boundary points (dashed), one panel per radius; markers: first descent "
        "end ▼, ascent peak ▲, second descent onset ✕ (smoothed-curve rules in the criteria "
        "table). Right: accuracy and PGD accuracy per budget (○ minimum after interpolation, "
        "★ late rise), and the share of region-boundary length within the band around the "
        "decision boundary beside the band's share of the area.",
        fig,
        frozenset(shown),
    )


def _phase_rows(summary: Mapping[str, Any]) -> str:
    def cell(v: Any) -> str:
        return (
            "<td class='dim'>not reached</td>"
            if v == NOT_REACHED
            else f"<td>{format_number(v)}</td>"
        )

    out = []
    phases = summary.get("lc_phases") or {}
    if phases:
        fields = (
            "first_value",
            "first_descent_end_step",
            "first_descent_depth",
            "ascent_peak_step",
            "ascent_peak_value",
            "second_descent_onset_step",
            "final_value",
            "final_to_peak",
        )
        head = "".join(f"<th>{f.replace('_', ' ')}</th>" for f in fields)
        body = "".join(
            f"<tr><th>{curve}</th>" + "".join(cell(p.get(f)) for f in fields) + "</tr>"
            for curve, p in phases.items()
        )
        out.append(
            "<h3>LC phases per point set and radius</h3>"
            f"<table class='summary phases'><tr><th>curve</th>{head}</tr>{body}</table>"
        )
    robust = summary.get("delayed_robustness") or {}
    if robust:
        fields = ("min_step", "min_value", "rise_step", "final_value", "gain", "chance")
        head = "".join(f"<th>{f.replace('_', ' ')}</th>" for f in fields)
        body = "".join(
            f"<tr><th>{curve}</th>" + "".join(cell(r.get(f)) for f in fields) + "</tr>"
            for curve, r in robust.items()
        )
        out.append(
            "<h3>Delayed robustness per budget</h3>"
            f"<table class='summary phases'><tr><th>curve</th>{head}</tr>{body}</table>"
        )
    return "".join(out)


def paper_tables_html(run: RunData) -> str:
    """The phase tables of a run's summary (HTML; empty without phases)."""
    return _phase_rows(run.summary)


# -- the probes' own figures (registered builders) ------------------------------------------


def boundary_lc_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``boundary_lc``: LC at decision-boundary points beside LC near train, test and
    random points of the ``lc`` probes with the same radius."""
    fig = go.Figure()
    shown = {(probe, "boundary_total"), (probe, "boundary_total_sem")}
    labels = P.run_labels(runs)
    for ri, run in enumerate(runs):
        prefix = "" if len(runs) == 1 else f"{labels[ri]}: "
        steps, values = run.series(probe, "boundary_total")
        if not len(steps):
            continue
        fig.add_trace(P.line(steps, values, f"{prefix}decision boundary", P.color(3), P.dash(ri)))
        radius = _radius(run, probe)
        for lc in _probes_of_kind(run, "lc"):
            if radius is None or _radius(run, lc) != radius:
                continue
            for i, split in enumerate(SPLITS):
                s, v = run.series(lc, f"{split}_total")
                if len(s):
                    fig.add_trace(P.line(s, v, f"{prefix}{split} points", P.color(i), P.dash(ri)))
    if not fig.data:
        return []
    P.style(fig, "Local complexity at the decision boundary and near the data")
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE)
    fig.update_yaxes(title_text="local complexity")
    return [
        ReportFigure(
            f"boundary-lc-{probe}",
            "LC at the decision boundary",
            "Mean LC at points on the decision boundary (bisection to a logit tie between each "
            "training point and its nearest differently predicted one) and near train, test "
            "and random points at the same radius. Region migration: boundary LC rises while "
            "LC near the data falls.",
            fig,
            frozenset(shown),
        )
    ]


def migration_heatmap(run: RunData, probe: str) -> ReportFigure | None:
    """Region-boundary density over (distance to the decision boundary, step)."""
    density = run.array_steps(probe, "density")
    edges = dict(run.array_steps(probe, "bin_edges"))
    if not density:
        return None
    steps = [s for s, _ in density]
    z = np.stack([np.asarray(d, dtype=np.float64) for _, d in density], axis=1)  # [B, T]
    first_edges = np.asarray(edges.get(steps[0], np.arange(z.shape[0] + 1)), dtype=np.float64)
    centres = 0.5 * (first_edges[1:] + first_edges[:-1])
    fig = go.Figure(
        go.Heatmap(
            x=[f"{s:,}" for s in steps],
            y=centres,
            z=z,
            colorscale="Viridis",
            colorbar=dict(title="length / area"),
            hovertemplate="step %{x}<br>distance %{y:.3g}<br>density %{z:.3g}<extra></extra>",
        )
    )
    P.style(
        fig,
        "Region migration: region-boundary density by distance to the decision boundary",
        1.4,
        log_x=False,
    )
    fig.update_xaxes(title_text="training step (logged steps, evenly spaced)", type="category")
    fig.update_yaxes(title_text="distance to the decision boundary in the plane (input units)")
    return ReportFigure(
        f"migration-{probe}",
        "Region migration heat map",
        "Length of region boundaries per unit area in fixed planes through training points of "
        "three classes, binned by the distance to the decision boundary within the plane "
        "(exact partitions), one column per logged step. Migration shows as density moving "
        "to small distances.",
        fig,
        frozenset((probe, k) for k in ("band_length_share", "band_area_share", "band_enrichment")),
    )


def frame_slider(run: RunData, probe: str, key: str = "plane_png") -> ReportFigure | None:
    """The stored partition pictures of one plane, one frame per logged step, on a slider."""
    pictures = run.array_steps(probe, key)
    if not pictures:
        return None
    fig = go.Figure()
    for i, (step, arr) in enumerate(pictures):
        uri = data_uri(png_bytes(arr, f"run {run.run_id} probe {probe!r} key {key!r} step {step}"))
        fig.add_trace(go.Image(source=uri, visible=i == 0, name=f"step {step:,}", hoverinfo="skip"))
    n = len(pictures)
    slider_steps = [
        dict(
            method="update",
            label=f"{step:,}",
            args=[
                {"visible": [j == i for j in range(n)]},
                {"title.text": f"Partition of the plane at step {step:,}"},
            ],
        )
        for i, (step, _) in enumerate(pictures)
    ]
    fig.update_layout(
        sliders=[
            dict(active=0, steps=slider_steps, currentvalue=dict(prefix="step "), pad=dict(t=30))
        ],
        title=dict(text=f"Partition of the plane at step {pictures[0][0]:,}", x=0.01),
        height=620,
        margin=dict(l=10, r=10, t=50, b=10),
        template="plotly_white",
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return ReportFigure(
        f"frames-{probe}",
        "Partition of one plane over training",
        "Exact linear regions of the plane through three training points at each stored step "
        "(move the slider): the paper's video as frames.",
        fig,
        frozenset({(probe, "n_regions")}),
    )


def migration_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``migration``: the heat map and the frame slider of the first run that has them."""
    for run in runs:
        figures = [f for f in (migration_heatmap(run, probe), frame_slider(run, probe)) if f]
        if figures:
            return figures
    return []
