"""The report's interactive figures, built from RunData (one run or several overlaid).

Each builder returns a ``ReportFigure`` or None when no run has the data it shows. With one
run, colours tell the series apart (train / test / random / adversarial); with several,
colours tell the runs apart and dash styles the series.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from splinescope.report import _plotting as P
from splinescope.store.rundata import RunData

_LAYER_KEY = re.compile(r"^(train|test|random)/(.+)$")
_CLASS_KEY = re.compile(r"^class_(.+)_total$")
_TOP_KEY = re.compile(r"^top_(\d+)$")


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report: HTML id (slug), title, one-line caption, the plotly figure and
    the ``(probe, key)`` scalars it shows (the report draws every other logged key too)."""

    slug: str
    title: str
    caption: str
    figure: go.Figure
    shows: frozenset[tuple[str, str]] = frozenset()


def _slug(base: str, probe: str, kind: str) -> str:
    """``base`` for a probe named after its kind, else ``base-probe`` (several instances)."""
    return base if probe == kind else f"{base}-{probe}"


def _shown(runs: Sequence[RunData], probe: str, keys) -> frozenset[tuple[str, str]]:
    return frozenset((probe, k) for k in keys)


Series = tuple[str, str, str]  # (probe, key, label)


def _series_color(label: str, i: int) -> str:
    for j, prefix in enumerate(("train", "test", "random")):
        if label.startswith(prefix):
            return P.color(j)
    return P.color(3 + i)


def _band(
    steps: np.ndarray, values: np.ndarray, err: np.ndarray, name: str, fill: str
) -> go.Scatter:
    """A shaded band values ± err over the log-step axis (no legend entry of its own)."""
    x = P.step_x(steps)
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([values + err, (values - err)[::-1]]),
        fill="toself",
        fillcolor=fill,
        opacity=0.2,
        line=dict(width=0),
        name=f"{name} ± s.e.",
        legendgroup=name,
        showlegend=False,
        hoverinfo="skip",
    )


def _add_series(
    fig: go.Figure,
    runs: Sequence[RunData],
    series: Sequence[Series],
    row: int,
    col: int = 1,
    errors: dict[str, str] | None = None,
) -> list[np.ndarray]:
    """Add one curve per (run, series) with data; return the plotted value arrays.

    ``errors`` maps a key to the key of its standard error, drawn as a band where logged at
    the same steps."""
    labels = P.run_labels(runs)
    plotted = []
    for ri, run in enumerate(runs):
        for si, (probe, key, label) in enumerate(series):
            steps, values = run.series(probe, key)
            if len(steps) == 0:
                continue
            if len(runs) == 1:
                name, c, d = label, _series_color(label, si), "solid"
            else:
                name, c, d = f"{labels[ri]}: {label}", P.color(ri), P.dash(si)
            if errors and key in errors:
                e_steps, err = run.series(probe, errors[key])
                if np.array_equal(e_steps, steps):
                    fig.add_trace(_band(steps, values, err, name, c), row=row, col=col)
            fig.add_trace(P.line(steps, values, name, c, d), row=row, col=col)
            plotted.append(values)
    return plotted


def _any(runs: Sequence[RunData], series: Sequence[Series]) -> bool:
    return any(len(r.series(p, k)[0]) for r in runs for p, k, _ in series)


def headline_figure(runs: Sequence[RunData]) -> ReportFigure | None:
    """The declared headline values that name an axis, on one shared log-step axis, one
    panel per axis (accuracies together, local complexities together, ...), with the phenomena marked
    as vertical lines; a key's standard error (``<key>_sem``) is drawn as a band."""
    from splinescope.report.declared import headline_series

    rows = [row for row in headline_series(runs) if row[0] is not None]
    axes = list(dict.fromkeys(axis for axis, *_ in rows))
    if not axes:
        return None
    fig = make_subplots(rows=len(axes), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    mark_rows = []
    for row, axis in enumerate(axes, start=1):
        series = [(p, k, label) for a, p, k, label in rows if a == axis]
        errors = {k: f"{k}_sem" for _, k, _ in series}
        lo, hi = P.finite_range(_add_series(fig, runs, series, row, errors=errors))
        if axis == "accuracy":
            lo, hi = min(lo, 0.0), max(hi, 1.0)
        mark_rows.append((row, lo, hi))
        fig.update_yaxes(title_text=axis, row=row, col=1)
    P.add_phenomenon_marks(fig, runs, mark_rows)
    P.style(fig, "Headline values", n_rows=len(axes))
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE, row=len(axes), col=1)
    shown = {(p, k) for _, p, k, _ in rows} | {(p, f"{k}_sem") for _, p, k, _ in rows}
    return ReportFigure(
        "headline",
        "Headline values",
        "The probes' headline values over training — " + ", ".join(axes) + " — on one "
        "log-step axis (shaded: ± one standard error); dotted verticals mark the detected "
        "phenomena.",
        fig,
        frozenset(shown),
    )


def loss_figure(runs: Sequence[RunData], probe: str = "accuracy") -> ReportFigure | None:
    """Train and test loss over steps (log-log)."""
    series: list[Series] = [
        (probe, "train_loss", "train loss"),
        (probe, "test_loss", "test loss"),
    ]
    if not _any(runs, series):
        return None
    fig = make_subplots(rows=1, cols=1)
    values = _add_series(fig, runs, series, 1)
    P.style(fig, "Loss")
    positive = all(np.all(v[np.isfinite(v)] > 0) for v in values)
    fig.update_yaxes(title_text="loss", type="log" if positive else "linear")
    if positive:
        fig.update_yaxes(dtick=1)
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE)
    slug = _slug("loss", probe, "accuracy")
    return ReportFigure(
        slug, "Loss", "Train and test loss.", fig, _shown(runs, probe, ("train_loss", "test_loss"))
    )


def _keys_matching(runs: Sequence[RunData], probe: str, pattern: re.Pattern) -> list[str]:
    return list(dict.fromkeys(k for r in runs for k in r.keys(probe) if pattern.match(k)))


def lc_layers_figure(runs: Sequence[RunData], probe: str = "lc") -> ReportFigure | None:
    """Local complexity per layer, one panel per point set (train / test / random)."""
    keys = _keys_matching(runs, probe, _LAYER_KEY)
    if not keys:
        return None
    splits = [s for s in ("train", "test", "random") if any(k.startswith(s + "/") for k in keys)]
    layers = list(dict.fromkeys(_LAYER_KEY.match(k).group(2) for k in keys))
    fig = make_subplots(
        rows=1, cols=len(splits), shared_yaxes=True, subplot_titles=splits, horizontal_spacing=0.04
    )
    labels = P.run_labels(runs)
    for col, split in enumerate(splits, start=1):
        for ri, run in enumerate(runs):
            for li, layer in enumerate(layers):
                steps, values = run.series(probe, f"{split}/{layer}")
                if len(steps) == 0:
                    continue
                name = layer if len(runs) == 1 else f"{labels[ri]}: {layer}"
                trace = P.line(steps, values, name, P.color(li), P.dash(ri), showlegend=col == 1)
                fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text="step (log)", row=1, col=col)
    P.style(fig, "Local complexity per layer")
    fig.update_yaxes(title_text="LC of layer", row=1, col=1)
    return ReportFigure(
        _slug("lc-layers", probe, "lc"),
        "Local complexity per layer" + ("" if probe == "lc" else f" ({probe})"),
        "Each layer's contribution to the local complexity, near train, test and random points.",
        fig,
        _shown(runs, probe, keys),
    )


def lc_class_figure(runs: Sequence[RunData], probe: str = "lc") -> ReportFigure | None:
    """Local complexity near the training points of each class."""
    keys = _keys_matching(runs, probe, _CLASS_KEY)
    if not keys:
        return None
    keys.sort(key=lambda k: (len(_CLASS_KEY.match(k).group(1)), k))
    fig = make_subplots(rows=1, cols=1)
    labels = P.run_labels(runs)
    for ri, run in enumerate(runs):
        for ci, key in enumerate(keys):
            steps, values = run.series(probe, key)
            if len(steps) == 0:
                continue
            cls = _CLASS_KEY.match(key).group(1)
            name = f"class {cls}" if len(runs) == 1 else f"{labels[ri]}: class {cls}"
            fig.add_trace(P.line(steps, values, name, P.color(ci), P.dash(ri)), row=1, col=1)
    P.style(fig, "Local complexity per class")
    fig.update_yaxes(title_text="LC (train points of the class)")
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE)
    return ReportFigure(
        _slug("lc-class", probe, "lc"),
        "Local complexity per class" + ("" if probe == "lc" else f" ({probe})"),
        "LC near the training points of each class.",
        fig,
        _shown(runs, probe, keys),
    )


def weights_figure(runs: Sequence[RunData], probe: str = "weights") -> ReportFigure | None:
    """Total weight norm, and per-layer norms below it when logged."""
    total: list[Series] = [(probe, "total_norm", "total norm")]
    layer_keys = list(
        dict.fromkeys(k for r in runs for k in r.keys(probe) if k.startswith("norm/"))
    )
    has_total = _any(runs, total)
    if not has_total and not layer_keys:
        return None
    n_rows = int(has_total) + int(bool(layer_keys))
    fig = make_subplots(rows=n_rows, cols=1, shared_xaxes=True, vertical_spacing=0.1)
    row = 1
    if has_total:
        _add_series(fig, runs, total, row)
        fig.update_yaxes(title_text="‖θ‖₂ (all parameters)", row=row, col=1)
        row += 1
    if layer_keys:
        labels = P.run_labels(runs)
        for ri, run in enumerate(runs):
            for li, key in enumerate(layer_keys):
                steps, values = run.series(probe, key)
                if len(steps) == 0:
                    continue
                layer = key[len("norm/") :]
                name = layer if len(runs) == 1 else f"{labels[ri]}: {layer}"
                fig.add_trace(P.line(steps, values, name, P.color(li), P.dash(ri)), row=row, col=1)
        fig.update_yaxes(title_text="norm per layer", row=row, col=1)
    P.style(fig, "Weight norm", n_rows=n_rows)
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE, row=n_rows, col=1)
    return ReportFigure(
        _slug("weights", probe, "weights"),
        "Weight norm",
        "Euclidean norm of the parameters.",
        fig,
        _shown(runs, probe, ["total_norm", *layer_keys]),
    )


def hessian_figure(runs: Sequence[RunData], probe: str = "hessian") -> ReportFigure | None:
    """Top Hessian eigenvalues over time, and the Hutchinson trace (± its standard error)."""
    tops = list(dict.fromkeys(k for r in runs for k in r.keys(probe) if _TOP_KEY.match(k)))
    tops.sort(key=lambda k: int(_TOP_KEY.match(k).group(1)))
    trace: list[Series] = [(probe, "trace", "trace")]
    has_trace = _any(runs, trace)
    if not tops and not has_trace:
        return None
    n_rows = int(bool(tops)) + int(has_trace)
    fig = make_subplots(rows=n_rows, cols=1, shared_xaxes=True, vertical_spacing=0.1)
    labels = P.run_labels(runs)
    row = 1
    if tops:
        for ri, run in enumerate(runs):
            for ti, key in enumerate(tops):
                steps, values = run.series(probe, key)
                if len(steps) == 0:
                    continue
                lab = f"λ{_TOP_KEY.match(key).group(1)}"
                name = lab if len(runs) == 1 else f"{labels[ri]}: {lab}"
                c = P.color(ti) if len(runs) == 1 else P.color(ri)
                d = "solid" if len(runs) == 1 else P.dash(ti)
                fig.add_trace(P.line(steps, values, name, c, d), row=row, col=1)
        fig.update_yaxes(title_text="top eigenvalues", row=row, col=1)
        row += 1
    if has_trace:
        _add_series(fig, runs, trace, row, errors={"trace": "trace_se"})
        fig.update_yaxes(title_text="trace (Hutchinson)", row=row, col=1)
    P.style(fig, "Loss curvature (Hessian)", n_rows=n_rows)
    fig.update_xaxes(title_text=P.STEP_AXIS_TITLE, row=n_rows, col=1)
    return ReportFigure(
        _slug("hessian", probe, "hessian"),
        "Loss curvature (Hessian)",
        "Largest eigenvalues of the loss Hessian and its trace (shaded: ± one standard error).",
        fig,
        _shown(runs, probe, [*tops, "trace", "trace_se"]),
    )


def _spread(items: Sequence, k: int) -> list:
    """Up to k items evenly spread, always keeping the first and the last."""
    if len(items) <= k:
        return list(items)
    idx = np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))
    return [items[i] for i in idx]


def density_figure(
    runs: Sequence[RunData], max_steps: int = 4, probe: str = "hessian"
) -> ReportFigure | None:
    """Hessian spectral density (stored arrays density_grid, density) at up to ``max_steps``
    steps per run, one panel per run, log density axis."""
    have = []
    for run in runs:
        grids = dict(run.array_steps(probe, "density_grid"))
        dens = run.array_steps(probe, "density")
        pairs = [(s, grids[s], d) for s, d in dens if s in grids]
        if pairs:
            have.append((run, _spread(pairs, max_steps)))
    if not have:
        return None
    labels = dict(zip((r.run_id for r in runs), P.run_labels(runs), strict=True))
    cols = min(len(have), 2)
    rows = math.ceil(len(have) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[labels[r.run_id] for r, _ in have])
    for i, (run, pairs) in enumerate(have):
        row, col = i // cols + 1, i % cols + 1
        for j, (step, grid, density) in enumerate(pairs):
            shade = j / max(len(pairs) - 1, 1)
            c = f"rgba({int(31 + 180 * shade)}, {int(119 - 80 * shade)}, {int(180 - 140 * shade)}, 1)"
            d = np.asarray(density, dtype=np.float64).ravel()
            g = np.asarray(grid, dtype=np.float64).ravel()
            floor = max(float(d.max()) * 1e-6, 1e-300)
            fig.add_trace(
                go.Scatter(
                    x=g,
                    y=np.maximum(d, floor),
                    mode="lines",
                    name=f"{labels[run.run_id]}: step {step:,}"
                    if len(have) > 1
                    else f"step {step:,}",
                    line=dict(color=c, width=2),
                    hovertemplate="λ=%{x:.4g}<br>density %{y:.3g}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(title_text="eigenvalue", row=row, col=col)
        fig.update_yaxes(title_text="density", type="log", row=row, col=col)
    P.style(fig, "Hessian spectral density", n_rows=rows, log_x=False)
    return ReportFigure(
        _slug("hessian-density", probe, "hessian"),
        "Hessian spectral density",
        "Smoothed eigenvalue density of the loss Hessian at a few steps (darker: later): "
        + "; ".join(
            f"{len(pairs)} of {len(run.array_steps(probe, 'density'))} stored steps"
            + (f" of {labels[run.run_id]}" if len(have) > 1 else "")
            for run, pairs in have
        )
        + ".",
        fig,
    )


def small_multiples(
    runs: Sequence[RunData],
    probe: str,
    title: str,
    caption: str,
    max_panels: int = 12,
    keep: Callable[[str], bool] | None = None,
    slug: str | None = None,
    titles: Callable[[str], str] = str,
) -> ReportFigure | None:
    """One panel per scalar key of ``probe`` (those ``keep`` accepts; up to ``max_panels``,
    the caption saying how many are left out), one curve per run; panel titles
    ``titles(key)``."""
    every = [
        k for k in dict.fromkeys(k for r in runs for k in r.keys(probe)) if keep is None or keep(k)
    ]
    keys = every[:max_panels]
    if not keys:
        return None
    if len(every) > len(keys):
        caption += (
            f" The first {len(keys)} of {len(every)} keys are drawn; the other "
            f"{len(every) - len(keys)} ({', '.join(every[len(keys) :][:5])}"
            f"{', …' if len(every) - len(keys) > 5 else ''}) are in the store and the exports."
        )
    cols = min(len(keys), 3)
    rows = math.ceil(len(keys) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[titles(k) for k in keys],
        horizontal_spacing=0.08,
        vertical_spacing=min(0.15, 0.5 / rows),
    )
    labels = P.run_labels(runs)
    for ki, key in enumerate(keys):
        row, col = ki // cols + 1, ki % cols + 1
        for ri, run in enumerate(runs):
            steps, values = run.series(probe, key)
            if len(steps) == 0:
                continue
            name = labels[ri] if len(runs) > 1 else key
            c = P.color(ri) if len(runs) > 1 else P.color(ki)
            fig.add_trace(
                P.line(
                    steps, values, name, c, legendgroup=name, showlegend=len(runs) > 1 and ki == 0
                ),
                row=row,
                col=col,
            )
    P.style(fig, title, n_rows=rows)
    fig.update_layout(height=240 * rows + 100, showlegend=len(runs) > 1)
    return ReportFigure(slug or f"probe-{probe}", title, caption, fig, _shown(runs, probe, keys))


def units_figure(runs: Sequence[RunData], probe: str = "units") -> ReportFigure | None:
    """Fractions of dead and of always-on units over steps: all layers (thick) and per layer."""
    panels = [
        (total, prefix, title)
        for total, prefix, title in (
            ("dead_frac", "dead/", "dead units (never active)"),
            ("always_on_frac", "always_on/", "always-on units"),
        )
        if any(k == total or k.startswith(prefix) for r in runs for k in r.keys(probe))
    ]
    if not panels:
        return None
    fig = make_subplots(
        rows=1, cols=len(panels), subplot_titles=[t for _, _, t in panels], horizontal_spacing=0.08
    )
    labels = P.run_labels(runs)
    for col, (total, prefix, _) in enumerate(panels, start=1):
        layers = list(dict.fromkeys(k for r in runs for k in r.keys(probe) if k.startswith(prefix)))
        for ri, run in enumerate(runs):
            for li, key in enumerate([total, *layers]):
                steps, values = run.series(probe, key)
                if len(steps) == 0:
                    continue
                layer = "all layers" if key == total else key[len(prefix) :]
                name = layer if len(runs) == 1 else f"{labels[ri]}: {layer}"
                c = "#222" if key == total else P.color(li - 1)
                trace = P.line(steps, values, name, c, P.dash(ri), showlegend=col == 1)
                trace.line.width = 3 if key == total else 1.5
                fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text="step (log)", row=1, col=col)
    P.style(fig, "Unit activity")
    fig.update_yaxes(title_text="fraction of units", row=1, col=1)
    keys = [k for r in runs for k in r.keys(probe) if k.endswith("_frac") or "/" in k]
    return ReportFigure(
        _slug("units", probe, "units"),
        "Unit activity",
        "Fraction of units never active (dead) and always active on the probe points.",
        fig,
        _shown(runs, probe, keys),
    )


# -- the builders registered with the probe kinds: builder(runs, probe) -> figures ----------


def _some(*figures: ReportFigure | None) -> list[ReportFigure]:
    return [f for f in figures if f is not None]


def accuracy_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``accuracy``: the loss (accuracies are headline values)."""
    return _some(loss_figure(runs, probe))


def lc_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``lc``: LC per layer and per class (the totals are headline values)."""
    return _some(lc_layers_figure(runs, probe), lc_class_figure(runs, probe))


def weights_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``weights``: total and per-layer norms."""
    return _some(weights_figure(runs, probe))


def units_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``units``: dead and always-on fractions."""
    return _some(units_figure(runs, probe))


def hessian_figures(runs: Sequence[RunData], probe: str) -> list[ReportFigure]:
    """Kind ``hessian``: top eigenvalues and trace, and the spectral density."""
    return _some(hessian_figure(runs, probe), density_figure(runs, probe=probe))


def small_multiples_of(
    runs: Sequence[RunData], decl, keys: Sequence[str], *, other: bool
) -> ReportFigure | None:
    """One panel per key of probe ``decl.probe`` (titled by its declared label)."""
    title = f"Other scalars of probe “{decl.probe}”" if other else f"Probe “{decl.probe}”"
    caption = (
        f"Scalars of probe {decl.probe} not shown above."
        if other
        else f"Scalars logged by probe {decl.probe}."
    )
    return small_multiples(
        runs,
        decl.probe,
        title,
        caption,
        keep=lambda k, keys=frozenset(keys): k in keys,
        slug=f"probe-{decl.probe}-other" if other else f"probe-{decl.probe}",
        titles=decl.label,
    )


def all_figures(runs: Sequence[RunData]) -> list[ReportFigure]:
    """Every figure the runs have data for, in reading order: the headline values, then each
    probe's figures (its kind's registered builder), then — so that nothing logged goes
    unseen — one panel per key of each probe that no figure above shows."""
    from splinescope.report.declared import probes_of

    first = headline_figure(runs)
    figures = _some(first)
    shown = set(first.shows) if first is not None else set()
    for decl in probes_of(runs):
        builder = None
        if decl.kind is not None:
            from splinescope.monitor.registry import get_kind

            builder = get_kind(decl.kind).figure_builder()
        built = builder(runs, decl.probe) if builder is not None else []
        figures += built
        for fig in built:
            shown |= fig.shows
        rest = [
            k
            for k in dict.fromkeys(k for r in runs for k in r.keys(decl.probe))
            if (decl.probe, k) not in shown
        ]
        if rest:
            fig = small_multiples_of(runs, decl, rest, other=bool(built))
            if fig is not None:
                figures.append(fig)
    return figures
