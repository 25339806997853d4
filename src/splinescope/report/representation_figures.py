"""Report figures of the representation probes: CKA heat maps with a step slider, CKA drift,
neural collapse and intrinsic dimension over steps, and reliability diagrams.

The slider switches which step's heat map is visible (no animation frames), so a figure is
self-contained in the page's ``Plotly.newPlot`` call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from splinescope.report import _plotting as P
from splinescope.report.figures import ReportFigure, _shown, _slug, _some, _spread
from splinescope.store.rundata import RunData

#: At most this many steps get a heat map (evenly spread, first and last kept).
MAX_SLIDER_STEPS = 40
#: Steps drawn in the reliability diagram: the first, the middle and the last.
RELIABILITY_STEPS = 3


def _labels(runs: Sequence[RunData]) -> dict[str, str]:
    return dict(zip((r.run_id for r in runs), P.run_labels(runs), strict=True))


def cka_heatmap(run: RunData, probe: str, title: str) -> go.Figure | None:
    """Heat maps of the stored ``matrix`` ``[L, L]`` (names from ``layers``), one per step,
    with a slider choosing the step (the last step shown first)."""
    names = dict(run.array_steps(probe, "layers"))
    pairs = [(s, m, names[s]) for s, m in run.array_steps(probe, "matrix") if s in names]
    pairs = _spread(pairs, MAX_SLIDER_STEPS)
    if not pairs:
        return None
    fig = go.Figure()
    for i, (step, matrix, layers) in enumerate(pairs):
        labels = [str(v) for v in np.asarray(layers).ravel()]
        fig.add_trace(
            go.Heatmap(
                z=np.asarray(matrix, dtype=np.float64),
                x=labels,
                y=labels,
                zmin=0.0,
                zmax=1.0,
                colorscale="Viridis",
                colorbar=dict(title="CKA"),
                visible=i == len(pairs) - 1,
                name=f"step {step:,}",
                hovertemplate="%{y} vs %{x}: %{z:.3f}<extra>step " + f"{step:,}</extra>",
            )
        )
    slider_steps = [
        dict(
            method="update",
            label=f"{step:,}",
            args=[
                {"visible": [j == i for j in range(len(pairs))]},
                {"title.text": f"{title} — step {step:,}"},
            ],
        )
        for i, (step, _, _) in enumerate(pairs)
    ]
    P.style(fig, f"{title} — step {pairs[-1][0]:,}", log_x=False)
    fig.update_layout(
        height=P.ROW_HEIGHT * 2 + 60,
        sliders=[
            dict(
                active=len(pairs) - 1,
                currentvalue=dict(prefix="step "),
                pad=dict(t=60),
                steps=slider_steps,
            )
        ],
    )
    fig.update_yaxes(autorange="reversed", title_text="layer")
    fig.update_xaxes(title_text="layer")
    return fig


def cka_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``cka``: the layer x layer CKA matrix of each run, one step at a time."""
    labels = _labels(runs)
    out = []
    for i, run in enumerate(runs):
        title = "Layer × layer CKA" + (f" ({labels[run.run_id]})" if len(runs) > 1 else "")
        fig = cka_heatmap(run, probe, title)
        if fig is None:
            continue
        slug = _slug("cka", probe, "cka") + (f"-{i}" if len(runs) > 1 else "")
        out.append(
            ReportFigure(
                slug,
                title,
                "Minibatch CKA between every pair of layers on a fixed point subset; the "
                "slider picks the training step.",
                fig,
            )
        )
    return out


def _layer_keys(runs: Sequence[RunData], probe: str, prefix: str) -> list[str]:
    return list(dict.fromkeys(k for r in runs for k in r.keys(probe) if k.startswith(prefix)))


def _curves(
    fig: go.Figure,
    runs: Sequence[RunData],
    probe: str,
    keys: Sequence[str],
    row: int,
    strip: str = "",
    mask: str | None = None,
) -> None:
    """One line per (run, key); colours tell keys apart (dashes runs). ``mask`` names a
    scalar: points where it equals the step are left out (e.g. a reference that is the step
    itself)."""
    labels = P.run_labels(runs)
    for ri, run in enumerate(runs):
        ref = dict(zip(*run.series(probe, mask), strict=True)) if mask else {}
        for ki, key in enumerate(keys):
            steps, values = run.series(probe, key)
            if mask:
                keep = np.array([ref.get(s, -1) != s for s in steps], dtype=bool)
                steps, values = steps[keep], values[keep]
            if len(steps) == 0:
                continue
            name = key[len(strip) :] if strip else key
            name = name if len(runs) == 1 else f"{labels[ri]}: {name}"
            fig.add_trace(
                P.line(steps, values, name, P.color(ki), P.dash(ri), legendgroup=name),
                row=row,
                col=1,
            )


def cka_drift_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``cka_drift``: each layer's CKA with itself at the first and the previous step."""
    init, prev = _layer_keys(runs, probe, "init/"), _layer_keys(runs, probe, "prev/")
    if not init and not prev:
        return []
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1)
    _curves(fig, runs, probe, init, 1, "init/")
    _curves(fig, runs, probe, prev, 2, "prev/", mask="prev_step")
    fig.update_yaxes(title_text="CKA vs first step", row=1, col=1)
    fig.update_yaxes(title_text="CKA vs previous step", row=2, col=1)
    P.style(fig, "Representation drift (CKA)", n_rows=2)
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE, row=2, col=1)
    return [
        ReportFigure(
            _slug("cka-drift", probe, "cka_drift"),
            "Representation drift (CKA)",
            "Linear CKA of each layer with the same layer at the first measured step (top) and "
            "at the previous measured step (bottom; the first measurement has none).",
            fig,
            _shown(runs, probe, [*init, *prev, "init_step", "prev_step"]),
        )
    ]


_NC_PANELS = (
    ("NC1 (log)", ("nc1", "nc1_trace_ratio"), True),
    (
        "NC2",
        tuple(
            f"nc2_{w}{p}" for w in ("", "w_") for p in ("equinorm", "equiangularity", "max_angle")
        ),
        False,
    ),
    ("NC3 self-duality", ("nc3",), False),
    ("NC4 NCC mismatch", ("nc4",), False),
)


def collapse_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``collapse``: NC1 (both variants), NC2 parts, NC3 and NC4 over steps."""
    panels = [
        (title, [k for k in keys if any(len(r.series(probe, k)[0]) for r in runs)], log)
        for title, keys, log in _NC_PANELS
    ]
    panels = [p for p in panels if p[1]]
    if not panels:
        return []
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for row, (title, keys, log) in enumerate(panels, start=1):
        _curves(fig, runs, probe, keys, row)
        fig.update_yaxes(title_text=title, type="log" if log else "linear", row=row, col=1)
    P.style(fig, "Neural collapse", n_rows=len(panels))
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE, row=len(panels), col=1)
    return [
        ReportFigure(
            _slug("collapse", probe, "collapse"),
            "Neural collapse",
            "NC1 = Tr(Σ_W Σ_B⁺)/C (Papyan et al.) and the trace ratio Tr(Σ_W)/Tr(Σ_T); NC2 "
            "equinorm, equiangularity and max-angle of the class means (nc2_*) and classifier "
            "rows (nc2_w_*); NC3 self-duality; NC4 nearest-class-mean disagreement.",
            fig,
            _shown(runs, probe, [k for _, keys, _ in panels for k in keys]),
        )
    ]


def dimension_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``intrinsic_dim``: intrinsic dimension of the inputs and of each layer."""
    layers = _layer_keys(runs, probe, "id/")
    keys = [k for k in ("input",) if any(len(r.series(probe, k)[0]) for r in runs)] + layers
    if not keys:
        return []
    fig = make_subplots(rows=1, cols=1)
    _curves(fig, runs, probe, keys, 1, "")
    for trace in fig.data:
        trace.name = trace.name.replace("id/", "")
    fig.update_yaxes(title_text="intrinsic dimension", row=1, col=1)
    P.style(fig, "Intrinsic dimension")
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE, row=1, col=1)
    return [
        ReportFigure(
            _slug("intrinsic-dim", probe, "intrinsic_dim"),
            "Intrinsic dimension",
            "Intrinsic dimension of the inputs and of each layer's output on a fixed subset.",
            fig,
            _shown(runs, probe, keys),
        )
    ]


def _reliability(run: RunData, probe: str) -> list[tuple[int, dict[str, np.ndarray]]]:
    parts = {
        key: dict(run.array_steps(probe, key))
        for key in ("bin_edges", "bin_counts", "bin_confidence", "bin_accuracy")
    }
    steps = sorted(set.intersection(*(set(v) for v in parts.values())))
    chosen = _spread(steps, RELIABILITY_STEPS)
    return [(s, {k: np.asarray(v[s]) for k, v in parts.items()}) for s in chosen]


def calibration_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``calibration``: reliability diagrams at the first, middle and last step."""
    have = [(run, d) for run in runs if (d := _reliability(run, probe))]
    if not have:
        return []
    labels = _labels(runs)
    cols = max(len(d) for _, d in have)
    titles = []
    for run, diagrams in have:  # row-major, each row padded to the common column count
        head = f"{labels[run.run_id]}: " if len(have) > 1 else ""
        titles += [f"{head}step {s:,}" for s, _ in diagrams] + [""] * (cols - len(diagrams))
    fig = make_subplots(
        rows=len(have),
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.06,
        vertical_spacing=0.15 / max(len(have), 1) + 0.05,
    )
    for ri, (_run, diagrams) in enumerate(have, start=1):
        for ci, (step, d) in enumerate(diagrams, start=1):
            edges = d["bin_edges"].astype(np.float64)
            counts = d["bin_counts"].astype(np.int64)
            centre, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
            filled = counts > 0
            fig.add_trace(
                go.Bar(
                    x=centre[filled],
                    y=d["bin_accuracy"][filled],
                    width=width[filled],
                    marker=dict(color=P.color(0), line=dict(width=0.5, color="#fff")),
                    name="accuracy per bin",
                    showlegend=ri == 1 and ci == 1,
                    customdata=np.stack([counts[filled], d["bin_confidence"][filled]], axis=1),
                    hovertemplate="accuracy %{y:.3f}<br>mean confidence %{customdata[1]:.3f}"
                    "<br>%{customdata[0]} points<extra>step " + f"{step:,}</extra>",
                ),
                row=ri,
                col=ci,
            )
            fig.add_trace(
                go.Scatter(
                    x=centre[filled],
                    y=d["bin_confidence"][filled],
                    mode="markers",
                    marker=dict(color=P.color(3), size=6),
                    name="mean confidence per bin",
                    showlegend=ri == 1 and ci == 1,
                ),
                row=ri,
                col=ci,
            )
            fig.add_trace(
                go.Scatter(
                    x=[0, 1],
                    y=[0, 1],
                    mode="lines",
                    line=dict(color="#888", dash="dash", width=1),
                    name="perfect calibration",
                    showlegend=ri == 1 and ci == 1,
                    hoverinfo="skip",
                ),
                row=ri,
                col=ci,
            )
            fig.update_xaxes(range=[0, 1], title_text="confidence", row=ri, col=ci)
            fig.update_yaxes(range=[0, 1], row=ri, col=ci)
        fig.update_yaxes(title_text="accuracy", row=ri, col=1)
    P.style(fig, "Reliability diagram", n_rows=len(have), log_x=False)
    fig.update_layout(bargap=0)
    return _some(
        ReportFigure(
            _slug("reliability", probe, "calibration"),
            "Reliability diagram",
            "Accuracy (bars) and mean confidence (dots) per confidence bin at the first, middle "
            "and last measured steps; bins [e_b, e_b+1), the last closed; empty bins not drawn.",
            fig,
        )
    )
