"""The example scripts run end to end on tiny settings and store a finished run."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from splinescope.store import load_metrics, load_runs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("script", "extra", "name"),
    [
        ("watch_loop.py", None, "watch-digits"),
        ("lightning_digits.py", "lightning", "lightning-digits"),
        ("hf_trainer_digits.py", "transformers", "hf-digits"),
    ],
)
def test_example_runs_and_stores_a_finished_run(script, extra, name, tmp_path, monkeypatch):
    if extra is not None:
        pytest.importorskip(extra)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = [script, "--steps", "6", "--runs-dir", str(tmp_path)]
    if script != "watch_loop.py":
        argv += ["--val-every" if "lightning" in script else "--eval-every", "3"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    runs = load_runs(tmp_path)
    assert list(runs["name"]) == [name] and list(runs["status"]) == ["finished"]
    probes = set(load_metrics(tmp_path, runs.iloc[0]["run_id"])["probe"])
    assert probes == {"accuracy", "lc", "weights"}
