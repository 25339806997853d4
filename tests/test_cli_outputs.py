"""The CLI's output commands on a real (short) run: report, export, partition."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from cheap_probes import cheap_args
from splinescope.cli import app
from splinescope.presets import preset_config
from splinescope.store import load_metrics, load_runs
from splinescope.train import snapshot_steps

runner = CliRunner(env={"COLUMNS": "200"})
CHEAP = ["--set", "schedule=log:4", *cheap_args(preset_config("grok-digits"))]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = invoke("run", "grok-digits", "--steps", 60, "--runs-dir", runs, "--quiet", *CHEAP)
    assert result.exit_code == 0, result.output
    return runs, load_runs(runs).iloc[0]["run_id"]


def test_snapshots_are_kept_at_every_probe_step(finished_run):
    runs, run_id = finished_run
    probe_steps = sorted(set(load_metrics(runs, run_id, probe="accuracy")["step"]))
    assert snapshot_steps(runs, run_id) == probe_steps


def test_report_command_writes_html_and_prints_its_path(finished_run, tmp_path):
    runs, run_id = finished_run
    out = tmp_path / "r.html"
    result = invoke("report", run_id, "-o", out, "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert str(out.resolve()) in result.output.replace("\n", "")
    assert out.read_text().lstrip().lower().startswith("<!doctype html")


def test_report_unknown_run_is_a_clear_error(finished_run, tmp_path):
    runs, run_id = finished_run
    result = runner.invoke(app, ["report", "grok-digitz", "--runs-dir", str(runs)])
    assert result.exit_code == 2 and "grok-digits" in result.output


def test_export_tensorboard_through_the_cli(finished_run, tmp_path):
    pytest.importorskip("tensorboard")
    runs, run_id = finished_run
    result = invoke("export", run_id, tmp_path / "tb", "--to", "tensorboard", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert any((tmp_path / "tb").rglob("events.out.tfevents*"))


def test_partition_from_a_snapshot_and_from_a_saved_model(finished_run, tmp_path):
    runs, run_id = finished_run
    last = snapshot_steps(runs, run_id)[-1]
    out = tmp_path / "p.png"
    result = invoke(
        "partition", run_id, "--step", last, "--plane", "test:3,4,5", "-o", out, "--runs-dir", runs
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    torch.save(model, tmp_path / "m.pt")
    out2 = tmp_path / "q.png"
    result = invoke("partition", "--model", tmp_path / "m.pt", "--data", "digits", "-o", out2)
    assert result.exit_code == 2 and "--trust-pickle" in result.output  # no unpickling unasked
    assert not out2.exists()
    result = invoke(
        "partition", "--model", tmp_path / "m.pt", "--trust-pickle", "--data", "digits", "-o", out2
    )
    assert result.exit_code == 0, result.output
    assert out2.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plane", "val:1,2,3"], "--plane"),
        (["--plane", "train:1,2"], "--plane"),
        (["--step", "999999"], "nearest"),
        (["--plane", "train:0,1,99999"], "out of range"),
    ],
)
def test_partition_bad_input(finished_run, tmp_path, args, message):
    runs, run_id = finished_run
    result = runner.invoke(
        app, ["partition", run_id, "--runs-dir", str(runs), "-o", str(tmp_path / "x.png"), *args]
    )
    assert result.exit_code == 2 and message in result.output
