import pandas as pd
import pytest
from typer.testing import CliRunner

from cheap_probes import cheap_args
from splinescope.cli import app
from splinescope.presets import PRESETS, preset_config
from splinescope.store import DB_FILENAME, load_metrics, load_runs

runner = CliRunner(env={"COLUMNS": "200"})

# grok-digits with few cheap probe steps: a real preset run through the CLI in seconds.
CHEAP = ["--set", "schedule=log:6", *cheap_args(preset_config("grok-digits"))]
# Only the accuracy probe (and the weights where named): the other default probes removed.
ONLY_ACCURACY = [
    arg
    for name in ("lc", "fgsm", "pgd", "units", "weights")
    for arg in ("--set", f"probes.{name}=off")
]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_presets_lists_every_preset_on_one_line():
    result = invoke("presets")
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == len(PRESETS)
    for name, line in zip(PRESETS, lines):
        assert line.startswith(name)


@pytest.mark.slow
def test_run_grok_digits_then_runs_and_show(tmp_path):
    result = invoke("run", "grok-digits", "--steps", 200, "--runs-dir", tmp_path, *CHEAP)
    assert result.exit_code == 0, result.output
    assert "finished: step 200" in result.output
    assert "interpolation" in result.output and "LC peak" in result.output
    run = load_runs(tmp_path).iloc[0]
    assert run["status"] == "finished" and run["config"]["steps"] == 200
    assert run["summary"]["lc_peak_step"] != "" and 200 in set(
        load_metrics(tmp_path, run["run_id"])["step"]
    )

    listed = invoke("runs", "--runs-dir", tmp_path)
    assert listed.exit_code == 0 and run["run_id"] in listed.output and "finished" in listed.output

    shown = invoke("show", "grok-digits", "--runs-dir", tmp_path)
    assert shown.exit_code == 0
    assert run["run_id"] in shown.output and "init_scale" in shown.output
    assert "grokking gap" in shown.output and "summary and phenomena" in shown.output


def test_unknown_preset_lists_the_presets(tmp_path):
    result = runner.invoke(app, ["run", "grok-digts", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        "unknown preset 'grok-digts'" in result.output
        and "did you mean 'grok-digits'" in result.output
    )
    assert all(name in result.output for name in PRESETS)


def test_bad_config_field_names_the_field_and_allowed_values(tmp_path):
    result = runner.invoke(
        app, ["run", "grok-digits", "--set", "optimizer=lion", "--runs-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "'optimizer'" in result.output and "'adamw', 'adam', 'sgd'" in result.output
    result = runner.invoke(
        app, ["run", "grok-digits", "--set", "lrr=1", "--runs-dir", str(tmp_path)]
    )
    assert (
        result.exit_code == 2
        and "'lrr' is unknown" in result.output
        and "did you mean lr" in result.output
    )


def test_unwritable_runs_dir_is_a_clear_error_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(
        app, ["run", "grok-digits", "--steps", "5", "--runs-dir", str(blocker / "r")]
    )
    assert result.exit_code == 2 and "not a writable directory" in result.output


def test_toml_config_file_runs(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(
        'preset = "grok-digits"\nname = "from-toml"\nsteps = 6\nwidth = 16\nn_train = 100\n'
        'schedule = "every:3"\n[[probes]]\nkind = "accuracy"\n[[probes]]\nkind = "weights"\n'
    )
    result = invoke("run", config, "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 0, result.output
    run = load_runs(tmp_path / "runs").iloc[0]
    assert run["name"] == "from-toml" and run["config"]["width"] == 16
    assert set(load_metrics(tmp_path / "runs", run["run_id"])["probe"]) == {"accuracy", "weights"}


def test_probes_lists_every_registered_kind_with_fields_and_defaults():
    result = invoke("probes")
    assert result.exit_code == 0
    for kind in ("accuracy", "lc", "adversarial", "hessian", "codes", "partition"):
        assert any(line.startswith(kind + " ") for line in result.output.splitlines())
    assert "radius" in result.output and "0.05" in result.output and "schedule" in result.output


def test_ctrl_c_marks_interrupted_and_resume_continues(tmp_path, monkeypatch):
    import splinescope.train as train_module

    real_train = train_module.train

    def interrupted_train(*args, **kwargs):
        return real_train(*args, stop_after=4, **kwargs)

    monkeypatch.setattr(train_module, "train", interrupted_train)
    args = [
        "--runs-dir",
        tmp_path,
        "--set",
        "n_train=100",
        "--set",
        "width=16",
        *ONLY_ACCURACY,
    ]
    result = invoke(
        "run",
        "grok-digits",
        "--steps",
        9,
        "--set",
        "schedule=every:3",
        *args[:2],
        *args[2:],
    )
    assert result.exit_code == 130
    run = load_runs(tmp_path).iloc[0]
    assert run["status"] == "interrupted"
    assert f"splinescope run --resume {run['run_id']}" in result.output
    monkeypatch.setattr(train_module, "train", real_train)
    resumed = invoke("run", "--resume", run["run_id"][:12], "--runs-dir", tmp_path, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert load_runs(tmp_path).iloc[0]["status"] == "finished"
    assert sorted(set(load_metrics(tmp_path, run["run_id"])["step"])) == [0, 3, 6, 9]
    clash = runner.invoke(
        app, ["run", "grok-digits", "--resume", run["run_id"], "--runs-dir", str(tmp_path)]
    )
    assert clash.exit_code == 2 and "--resume" in clash.output


def test_show_and_runs_on_unknown_things(tmp_path):
    result = runner.invoke(app, ["show", "nothing", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no run 'nothing'" in result.output
    result = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path / "absent")])
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.slow
def test_a_real_sigint_marks_the_run_interrupted_and_keeps_its_data(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    command = [
        sys.executable, "-c", "from splinescope.cli import app; app()",
        "run", "grok-digits", "--steps", "1000000", "--runs-dir", str(tmp_path), "--quiet",
        *ONLY_ACCURACY[:-2], "--set", "width=16", "--set", "n_train=100",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            runs = load_runs(tmp_path) if (tmp_path / DB_FILENAME).exists() else None
            if runs is not None and len(runs) and runs.iloc[0]["last_step"] is not pd.NA:
                if int(runs.iloc[0]["last_step"]) >= 10:
                    break
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, output
    run = load_runs(tmp_path).iloc[0]
    assert run["status"] == "interrupted" and "--resume" in output
    assert int(run["last_step"]) >= 10


def test_run_with_every_probe_off(tmp_path):
    result = invoke(
        "run", "grok-digits", "--set", "probes=[]", "--steps", 20, "--quiet", "--runs-dir", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert "finished: step 20" in result.output
    run = load_runs(tmp_path).iloc[0]
    assert run["status"] == "finished" and run["config"]["probes"] == []
