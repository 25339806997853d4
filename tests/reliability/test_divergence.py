"""Divergence: a non-finite loss or parameter marks the run "diverged" at that step, with the
step and the tensor's name stored; training stops there by default (``on_divergence =
"stop"``) or goes on (``"continue"``); every step recorded before it is kept and the report
says so at its top."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.report import report_command
from splinescope.store import get_run, load_metrics
from splinescope.train import TrainConfig, train
from splinescope.train.divergence import check_loss, check_parameters


def _config(**changes) -> TrainConfig:
    base = {
        "dataset": "digits",
        "n_train": 100,
        "width": 16,
        "depth": 1,
        "batch_size": 50,
        "steps": 60,
        "schedule": "every:1",
        "probes": [{"kind": "accuracy"}],
        "optimizer": "sgd",
        "momentum": 0.0,
    }
    return TrainConfig.from_dict({**base, **changes})


def test_check_loss_and_parameters_name_the_tensor():
    assert check_loss(3, 0.5) is None
    assert check_loss(3, math.inf).to_dict() == {"step": 3, "tensor": "loss", "value": "inf"}
    assert check_loss(4, math.nan).value == "nan"
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert check_parameters(1, model) is None
    with torch.no_grad():
        model[2].bias[1] = -math.inf
    found = check_parameters(7, model)
    assert (found.step, found.tensor, found.value) == (7, "2.bias", "-inf")
    with torch.no_grad():
        model[0].weight[0, 0] = math.nan
    assert check_parameters(7, model).tensor == "0.weight"  # the first in named order
    huge = nn.Linear(2, 2)
    with torch.no_grad():
        huge.weight.fill_(3e38)  # the norm overflows, every value is finite: no divergence
    assert check_parameters(1, huge) is None


def test_a_diverging_loss_stops_the_run_and_keeps_every_step(tmp_path):
    result = train(_config(lr=1e8), runs_dir=tmp_path)
    div = result.divergence
    assert div is not None and div.tensor == "loss" and div.value in ("inf", "nan")
    row = get_run(tmp_path, result.run_id)
    assert row["status"] == "diverged" and row["divergence"] == div.to_dict()
    steps = sorted(set(load_metrics(tmp_path, result.run_id)["step"]))
    assert steps == list(range(div.step))  # every step before it, none after
    with pytest.raises(SplinescopeError, match="diverged; only interrupted or crashed"):
        train(None, runs_dir=tmp_path, resume=result.run_id)
    html = report_command([result.run_id], tmp_path, tmp_path / "r.html").read_text()
    notice = html.index(f'data-diverged="{result.run_id}"')
    assert notice < html.index('id="glance"')  # at the top, before anything else
    assert f"at step <b>{div.step:,}</b>" in html and "training stopped there" in html


def test_a_parameter_overflow_names_the_parameter(tmp_path):
    result = train(_config(lr=1e35, init_scale=100.0), runs_dir=tmp_path)
    div = result.divergence
    assert div.step == 1 and div.tensor.endswith(("weight", "bias")) and div.tensor != "loss"
    assert get_run(tmp_path, result.run_id)["divergence"]["tensor"] == div.tensor


def test_on_divergence_continue_trains_on_and_still_ends_diverged(tmp_path):
    result = train(_config(lr=1e8, on_divergence="continue", steps=20), runs_dir=tmp_path)
    assert result.step == 20 and result.divergence is not None
    row = get_run(tmp_path, result.run_id)
    assert row["status"] == "diverged" and row["divergence"]["step"] == result.divergence.step
    assert max(load_metrics(tmp_path, result.run_id)["step"]) == 20
    with pytest.raises(SplinescopeError, match="on_divergence.*'stop', 'continue'"):
        _config(on_divergence="ignore")
