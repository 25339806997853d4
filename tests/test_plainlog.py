"""Progress outside a terminal: one plain line per probe step (step, elapsed, ETA, loss,
headline values), ``--log-every`` for more, ``--quiet`` for none, never an ANSI code."""

from __future__ import annotations

import io
import re

from typer.testing import CliRunner

from cheap_probes import cheap_args
from splinescope.cli import _status_line, app
from splinescope.plainlog import PlainLog, clock
from splinescope.presets import preset_config
from splinescope.store import load_metrics, load_runs
from splinescope.train.loop import Progress

LINE = re.compile(
    r"^step (\d[\d,]*)/(\d[\d,]*) \((\d+\.\d)%\) \| elapsed \d+:\d\d:\d\d \| "
    r"eta (\d+:\d\d:\d\d|-) \| loss (\S+)( \| [^|]+ [-\d.e+]+)*$"
)


def test_lines_state_step_share_elapsed_eta_and_headlines():
    times = iter([100.0, 101.0, 103.0, 104.0])
    out = io.StringIO()
    log = PlainLog(out, _status_line, now=lambda: next(times))
    headline = (("train accuracy", 0.5), ("LC (train)", 4.25))
    for step, measured in ((0, True), (10, True), (20, False), (40, True)):
        log(Progress(step, 100, 0.125 if step else float("nan"), {}, measured, headline))
    assert out.getvalue().splitlines() == [
        "step 0/100 (0.0%) | elapsed 0:00:00 | eta - | loss - | train accuracy 0.5 | LC (train) 4.25",
        "step 10/100 (10.0%) | elapsed 0:00:01 | eta 0:00:09 | loss 0.125 | train accuracy 0.5 "
        "| LC (train) 4.25",
        "step 40/100 (40.0%) | elapsed 0:00:04 | eta 0:00:06 | loss 0.125 | train accuracy 0.5 "
        "| LC (train) 4.25",
    ]
    assert clock(3725.4) == "1:02:05" and clock(float("inf")) == "-"


def test_run_outside_a_terminal_writes_one_plain_line_per_probe_step(tmp_path):
    runner = CliRunner(env={"COLUMNS": "200"})
    args = ["run", "grok-digits", "--steps", "60", "--runs-dir", str(tmp_path)]
    args += ["--set", "schedule=log:5", *cheap_args(preset_config("grok-digits"))]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("step ")]
    run = load_runs(tmp_path).iloc[0]
    probe_steps = sorted(set(load_metrics(tmp_path, run["run_id"])["step"]))
    assert [int(LINE.match(line).group(1)) for line in lines] == probe_steps
    assert "train accuracy" in lines[-1] and lines[-1].startswith("step 60/60 (100.0%)")
    assert f"run {run['run_id']} finished" in result.output

    more = runner.invoke(app, [*args, "--log-every", "20"], catch_exceptions=False)
    steps = [int(LINE.match(x).group(1)) for x in more.output.splitlines() if x.startswith("step ")]
    assert steps == sorted(set(probe_steps) | {0, 20, 40, 60})
    quiet = runner.invoke(app, [*args, "--quiet"], catch_exceptions=False)
    assert not [x for x in quiet.output.splitlines() if x.startswith("step ")]
