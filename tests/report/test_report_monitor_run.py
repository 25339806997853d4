"""A real (tiny) training run written by the Monitor is reported with every figure its probes
feed: guards the report against drift from the probes' naming."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F

from splinescope.report import report_command
from splinescope.report.phenomena import PHENOMENA


@pytest.mark.slow
def test_report_of_a_monitored_training_run(tmp_path):
    from splinescope.analysis.phenomena import detect_run
    from splinescope.data import load_dataset
    from splinescope.models import build_model
    from splinescope.monitor import (
        AccuracyProbe,
        AdversarialProbe,
        LocalComplexityProbe,
        LogSchedule,
        Monitor,
        ProbeContext,
        UnitActivityProbe,
        WeightNormProbe,
    )
    from splinescope.store import RunStore, load_metrics, load_runs

    data = load_dataset("digits", seed=0)
    model = build_model("mlp", data=data, width=32, depth=2)

    def loss_fn(logits, y):
        return F.cross_entropy(logits, y)

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    probes = [
        AccuracyProbe(),
        AdversarialProbe(attack="fgsm", eps=(0.05,), splits=("test", "train"), n_points=50),
        LocalComplexityProbe(radius=0.1, n_vertices=10, n_points=50),
        LocalComplexityProbe(radius=0.5, n_vertices=10, n_points=50, name="lc_r05"),
        WeightNormProbe(),
        UnitActivityProbe(),
    ]
    context = ProbeContext.from_data(data, loss_fn=loss_fn, n_random=50)
    runs = tmp_path / "runs"
    store = RunStore(runs)
    with Monitor(
        model, probes, store, LogSchedule(8, max_step=150), context=context, name="tiny"
    ) as mon:
        for step in range(151):
            if step > 0:
                idx = torch.randint(0, len(data.y_train), (100,))
                opt.zero_grad()
                loss_fn(model(data.x_train[idx]), data.y_train[idx]).backward()
                opt.step()
            mon.step(step)
    store.set_summary(mon.run_id, detect_run(runs, mon.run_id))
    store.close()

    page = report_command(["tiny"], runs, tmp_path / "tiny.html").read_text(encoding="utf-8")
    slugs = re.findall(r'<figure class="fig" data-figure="([^"]+)"', page)
    assert slugs == [
        "paper-view",  # LC phases were detected: the paper view comes first
        "headline",
        "loss",
        "lc-layers",
        "lc-class",
        "lc-layers-lc_r05",
        "lc-class-lc_r05",
        "weights",
        "units",
    ]
    summary = load_runs(runs).iloc[0]["summary"]
    assert re.findall(r'data-summary-key="([^"]+)"', page) == [
        *[k for k in PHENOMENA if k in summary],
        *sorted(k for k in summary if k not in PHENOMENA),
    ]
    metrics = load_metrics(runs, "tiny")
    lc_keys = metrics.loc[metrics.probe == "lc", "key"]
    layers = sorted({k.split("/", 1)[1] for k in lc_keys if k.startswith("train/")})
    names = {t["name"] for t in _spec(page, "lc-layers")["data"]}
    assert layers and names == set(layers)
    acc_names = {t["name"] for t in _spec(page, "headline")["data"]}
    assert {
        "train accuracy",
        "test accuracy",
        "test accuracy under FGSM l∞, ε = 0.05",
        "train accuracy under FGSM l∞, ε = 0.05",
    } <= acc_names
    for split in ("train", "test", "random"):  # both radii, told apart by probe name
        assert {f"LC near {split} points (lc)", f"LC near {split} points (lc_r05)"} <= acc_names
    assert summary["lc_key"] == "lc/train_total"


def _spec(page: str, slug: str) -> dict:
    text = re.search(rf'data-plot="plot-{slug}">(.*?)</script>', page, re.S).group(1)
    return json.loads(text)
