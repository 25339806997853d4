"""Shared plotting conventions: the log-step axis, colours and dashes, phenomenon marks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from splinescope.report._downsample import MAX_DRAWN, downsample_indices
from splinescope.report.phenomena import step_marks
from splinescope.store.rundata import RunData

# Step 0 (initialisation) cannot sit on a log axis; it is drawn at this x and named in titles.
ZERO_STEP_X = 0.5
STEP_AXIS_TITLE = "training step (log scale; step 0 drawn at 0.5)"

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#393b79",
    "#bcbd22",
    "#17becf",
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
# Labels written beside the phenomenon lines of a single run.
SHORT_MARKS = {
    "interpolation_step": "train fitted",
    "generalization_step": "test settled",
    "robust_interpolation_step": "robust fit",
    "robust_generalization_step": "robust settled",
    "lc_peak_step": "LC peak",
    "lc_descent_step": "LC descent",
    "lc_first_descent_step": "LC 1st descent",
    "lc_ascent_peak_step": "LC ascent peak",
    "lc_second_descent_step": "LC 2nd descent",
    "delayed_robustness_step": "robustness rises",
}
FONT = dict(family="DejaVu Sans, Helvetica, Arial, sans-serif", size=13, color="#222")
ROW_HEIGHT = 300


def color(i: int) -> str:
    """The i-th colour of the report palette (cycles)."""
    return PALETTE[i % len(PALETTE)]


def dash(i: int) -> str:
    """The i-th dash style (cycles)."""
    return DASHES[i % len(DASHES)]


def step_x(steps: np.ndarray) -> np.ndarray:
    """x coordinates of training steps on the log axis (step 0 -> ZERO_STEP_X), float64 [T]."""
    x = np.asarray(steps, dtype=np.float64)
    return np.where(x <= 0, ZERO_STEP_X, x)


def run_labels(runs: Sequence[RunData]) -> list[str]:
    """Legend names of runs: the run name, with the id appended where names repeat."""
    names = [r.name for r in runs]
    return [f"{r.name} ({r.run_id[:8]})" if names.count(r.name) > 1 else r.name for r in runs]


def line(
    steps: np.ndarray,
    values: np.ndarray,
    name: str,
    line_color: str,
    line_dash: str = "solid",
    legendgroup: str | None = None,
    showlegend: bool = True,
) -> go.Scatter:
    """A curve over the log-step axis; hover shows the true step and the value. A curve of
    more than ``MAX_DRAWN`` points is drawn from fewer (min-max buckets:
    :mod:`splinescope.report._downsample`)."""
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=np.float64)
    if len(steps) > MAX_DRAWN:
        keep = downsample_indices(step_x(steps), values)
        steps, values = steps[keep], values[keep]
    return go.Scatter(
        x=step_x(steps),
        y=values,
        customdata=np.asarray(steps, dtype=np.int64),
        mode="lines+markers" if len(steps) < 30 else "lines",
        marker=dict(size=5),
        name=name,
        legendgroup=legendgroup or name,
        showlegend=showlegend,
        line=dict(color=line_color, dash=line_dash, width=2),
        hovertemplate="step %{customdata:,}<br>%{y:.4g}<extra>" + name + "</extra>",
    )


def add_phenomenon_marks(
    fig: go.Figure,
    runs: Sequence[RunData],
    rows: Sequence[tuple[int, float, float]],
    col: int = 1,
) -> None:
    """Vertical dotted lines at each run's phenomenon steps, spanning (row, y0, y1) of each row.

    One legend entry per phenomenon (and run, when several), toggling the line in all rows.
    """
    labels = run_labels(runs)
    for ri, run in enumerate(runs):
        marks = step_marks(run.summary)
        if len(runs) == 1:
            # Name the lines in the first panel too, staggered so neighbours stay readable.
            for mi, (key, _, step) in enumerate(marks):
                fig.add_annotation(
                    x=float(np.log10(step_x(np.array([step]))[0])),
                    y=0.98 - 0.09 * (mi % 3),
                    xref="x",
                    yref="y domain",
                    text=SHORT_MARKS.get(key, key),
                    showarrow=False,
                    xanchor="left",
                    yanchor="top",
                    xshift=3,
                    font=dict(size=11, color="#333"),
                    bgcolor="rgba(255,255,255,0.8)",
                )
        for mi, (key, label, step) in enumerate(marks):
            name = label if len(runs) == 1 else f"{labels[ri]}: {label}"
            mark_color = "#555" if len(runs) == 1 else color(ri)
            group = f"mark-{ri}-{key}"
            for k, (row, y0, y1) in enumerate(rows):
                fig.add_trace(
                    go.Scatter(
                        x=[step_x(np.array([step]))[0]] * 2,
                        y=[y0, y1],
                        mode="lines",
                        name=name,
                        legendgroup=group,
                        showlegend=k == 0,
                        line=dict(color=mark_color, dash=dash(mi + 2), width=1.2),
                        opacity=0.8,
                        hovertemplate=f"{name}: step {step:,}<extra></extra>",
                    ),
                    row=row,
                    col=col,
                )


def style(fig: go.Figure, title: str, n_rows: int = 1, log_x: bool = True) -> go.Figure:
    """Common layout: white print-friendly background, log-step x axes; the legend on the
    right, or above the plot in rows when it has many entries (it then prints whole)."""
    names = [t.name or "" for t in fig.data if t.showlegend is not False]
    height, top = ROW_HEIGHT * n_rows + 90, 60
    legend = dict(font=dict(size=11), itemsizing="constant")
    if len(names) * 28 > ROW_HEIGHT * n_rows - 30:  # would not fit beside the plot
        per_row = max(1, 900 // (7 * max(len(n) for n in names) + 50))
        extra = 21 * math.ceil(len(names) / per_row)
        height, top = height + extra, top + extra
        legend |= dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom")
    fig.update_layout(
        title=dict(
            text=title,
            x=0.01,
            xanchor="left",
            y=1,
            yref="container",
            yanchor="top",
            pad=dict(t=12),
            font=dict(size=16),
        ),
        font=FONT,
        template="plotly_white",
        height=height,
        margin=dict(l=70, r=20, t=top, b=60),
        legend=legend,
        hovermode="closest",
    )
    if log_x:
        fig.update_xaxes(type="log", dtick=1, showgrid=True, gridcolor="#e5e5e5")
    fig.update_yaxes(showgrid=True, gridcolor="#e5e5e5", zeroline=False)
    return fig


def finite_range(values: Sequence[np.ndarray]) -> tuple[float, float]:
    """(min, max) over the finite entries of several arrays; (0, 1) when there are none."""
    parts = [np.asarray(v, dtype=np.float64) for v in values]
    parts = [p[np.isfinite(p)] for p in parts]
    parts = [p for p in parts if p.size]
    if not parts:
        return 0.0, 1.0
    allv = np.concatenate(parts)
    lo, hi = float(allv.min()), float(allv.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi
