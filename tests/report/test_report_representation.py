"""A tiny monitored run with the representation probes is reported with their figures: CKA
heat maps with a step slider, CKA drift, neural collapse, intrinsic dimension and the
reliability diagram at the first, middle and last steps."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from splinescope.report import report_command


def _spec(page: str, slug: str) -> dict:
    text = re.search(rf'data-plot="plot-{slug}">(.*?)</script>', page, re.S).group(1)
    return json.loads(text)


@pytest.mark.slow
def test_report_of_a_run_with_the_representation_probes(tmp_path):
    from splinescope.data import load_dataset
    from splinescope.models import build_model
    from splinescope.monitor import LogSchedule, Monitor, ProbeContext
    from splinescope.monitor.probes import (
        CalibrationProbe,
        CKADriftProbe,
        IntrinsicDimensionProbe,
        LayerCKAProbe,
        NeuralCollapseProbe,
    )
    from splinescope.store import RunStore, load_arrays, load_metrics

    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = build_model("mlp", data=data, width=24, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    probes = [
        LayerCKAProbe(n_points=96, batch_size=48),
        CKADriftProbe(n_points=48),
        NeuralCollapseProbe(n_points=200),
        IntrinsicDimensionProbe(n_points=150),
        CalibrationProbe(n_bins=10),
    ]
    context = ProbeContext.from_data(data, loss_fn=F.cross_entropy, n_random=0)
    runs = tmp_path / "runs"
    store = RunStore(runs)
    schedule = LogSchedule(6, max_step=40)
    with Monitor(model, probes, store, schedule, context=context, name="rep", strict=True) as mon:
        for step in range(41):
            if step > 0:
                idx = torch.randint(0, len(data.y_train), (100,))
                opt.zero_grad()
                F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
                opt.step()
            mon.step(step)
    store.close()
    measured = [s for s in range(41) if s in schedule]

    page = report_command(["rep"], runs, tmp_path / "rep.html").read_text(encoding="utf-8")
    slugs = re.findall(r'<figure class="fig" data-figure="([^"]+)"', page)
    for slug in ("cka", "cka-drift", "collapse", "intrinsic-dim", "reliability"):
        assert slug in slugs

    heat = _spec(page, "cka")
    assert [t["type"] for t in heat["data"]] == ["heatmap"] * len(measured)
    assert [t.get("visible") for t in heat["data"]] == [False] * (len(measured) - 1) + [True]
    slider = heat["layout"]["sliders"][0]
    assert [s["label"] for s in slider["steps"]] == [f"{s:,}" for s in measured]
    matrices = load_arrays(runs, "rep", probe="cka", key="matrix")
    last = matrices.sort_values("step")["array"].iloc[-1]
    np.testing.assert_allclose(_arr(heat["data"][-1]["z"]), last)
    assert heat["data"][0]["x"] == ["act1", "act2"]  # the MLP's activation modules

    drift = _spec(page, "cka-drift")
    prev = [t for t in drift["data"] if t["yaxis"] == "y2"]
    assert prev and all(0.5 not in _xs(t) for t in prev)  # step 0 has no previous step
    init = [t for t in drift["data"] if t["yaxis"] == "y"]
    assert all(len(_xs(t)) == len(measured) for t in init)

    names = {t["name"] for t in _spec(page, "collapse")["data"]}
    assert {"nc1", "nc1_trace_ratio", "nc3", "nc4", "nc2_w_equinorm"} <= names
    assert {t["name"] for t in _spec(page, "intrinsic-dim")["data"]} == {"input", "act1", "act2"}

    rel = _spec(page, "reliability")
    titles = [a["text"] for a in rel["layout"]["annotations"]]
    mid = measured[len(measured) // 2] if len(measured) % 2 else None
    assert titles[0] == "step 0" and titles[-1] == f"step {measured[-1]:,}" and len(titles) == 3
    if mid is not None:
        assert titles[1] == f"step {mid:,}"
    metrics = load_metrics(runs, "rep")
    assert set(metrics.loc[metrics.probe == "calibration", "key"]) == {
        "error",
        "nll",
        "brier",
        "accuracy",
    }


def _arr(value) -> np.ndarray:
    """A plotly data field as an array (plotly may write it as a base64 typed array)."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        if shape is not None:
            flat = flat.reshape([int(n) for n in str(shape).split(",")])
        return flat.astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def _xs(trace: dict) -> list[float]:
    return _arr(trace["x"]).tolist()
