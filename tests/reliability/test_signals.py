"""SIGINT, SIGTERM and SIGHUP stop a real ``splinescope run`` process cleanly: the step in
progress finishes, a checkpoint is written at it, the run is marked "interrupted", the exit
code is 128 + the signal's number; ``--resume`` then gives exactly the uninterrupted run
(every stored value and every final weight bit-equal). A second signal ends a long step at
once."""

from __future__ import annotations

import signal
import time

import pytest
import torch
from reliability_helpers import run_cli, spawn, tiny_toml, wait_for_line

from splinescope.store import load_metrics, load_runs
from splinescope.store.checkpoints import checkpoint_path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, never interrupted."""
    root = tmp_path_factory.mktemp("reference")
    config = tiny_toml(root / "tiny.toml")
    done = run_cli("run", config, "--runs-dir", root / "runs", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = load_runs(root / "runs").iloc[0]["run_id"]
    return root / "runs", run_id


def _weights(runs_dir, run_id):
    return torch.load(checkpoint_path(runs_dir, run_id), weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig",
    [
        signal.SIGTERM,
        pytest.param(signal.SIGINT, marks=pytest.mark.soak),
        pytest.param(signal.SIGHUP, marks=pytest.mark.soak),
    ],
)
def test_a_signal_checkpoints_marks_interrupted_and_resume_is_bit_exact(sig, tmp_path, reference):
    config = tiny_toml(tmp_path / "tiny.toml")
    runs = tmp_path / "runs"
    proc = spawn("run", config, "--runs-dir", runs, "--quiet", DRIVER_READY_AT="300")
    wait_for_line(proc, "READY")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out
    assert "interrupted" in out and signal.Signals(sig).name in out and "--resume" in out
    row = load_runs(runs).iloc[0]
    assert row["status"] == "interrupted"
    stopped_at = int(_weights(runs, row["run_id"])["step"])
    # the checkpoint is at the step the signal ended: step 300 itself when the signal
    # arrived before that step was over, else a later step between probe steps
    assert 300 <= stopped_at < 1200, stopped_at
    assert max(load_metrics(runs, row["run_id"])["step"]) <= stopped_at

    resumed = run_cli("run", "--resume", row["run_id"], "--runs-dir", runs, "--quiet")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert load_runs(runs).iloc[0]["status"] == "finished"
    ref_runs, ref_id = reference
    a, b = _weights(ref_runs, ref_id), _weights(runs, row["run_id"])
    assert a["step"] == b["step"] == 1200
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ma, mb = load_metrics(ref_runs, ref_id), load_metrics(runs, row["run_id"])
    assert ma[["step", "probe", "key"]].equals(mb[["step", "probe", "key"]])
    assert (ma["value"].to_numpy() == mb["value"].to_numpy()).all()


@pytest.mark.slow
def test_a_second_signal_ends_a_long_step_at_once(tmp_path):
    config = tiny_toml(tmp_path / "tiny.toml")
    runs = tmp_path / "runs"
    proc = spawn(
        "run", config, "--runs-dir", runs, "--quiet", DRIVER_SLEEP_AT="200", DRIVER_SLEEP_S="60"
    )
    wait_for_line(proc, "SLEEPING")
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert proc.poll() is None  # the first signal lets the step finish
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert time.monotonic() - began < 20  # not the 60 s the step would have taken
    assert proc.returncode == 143, out
    row = load_runs(runs).iloc[0]
    assert row["status"] == "interrupted"
    assert int(_weights(runs, row["run_id"])["step"]) == 200  # the last probe step's checkpoint


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_zero(tmp_path):
    """A stop during setup or step 0 leaves an interrupted run without a checkpoint: resume
    trains it from the start, under its id, exactly as an uninterrupted run."""
    from splinescope.train import TrainConfig, train

    config = TrainConfig.from_dict(
        {"dataset": "digits", "n_train": 60, "width": 8, "depth": 1, "batch_size": 20,
         "steps": 30, "schedule": "every:10", "probes": [{"kind": "accuracy"}]}
    )  # fmt: skip
    whole = train(config, runs_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train(config, runs_dir=tmp_path / "b", stop_after=0)
    run_id = load_runs(tmp_path / "b").iloc[0]["run_id"]
    checkpoint_path(tmp_path / "b", run_id).unlink()  # as if stopped before step 0's save
    resumed = train(None, runs_dir=tmp_path / "b", resume=run_id)
    assert resumed.run_id == run_id and resumed.step == 30
    a, b = _weights(tmp_path / "a", whole.run_id), _weights(tmp_path / "b", run_id)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ma, mb = load_metrics(tmp_path / "a", whole.run_id), load_metrics(tmp_path / "b", run_id)
    assert (ma["value"].to_numpy() == mb["value"].to_numpy()).all()
