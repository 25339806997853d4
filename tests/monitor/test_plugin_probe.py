"""A probe written outside splinescope, installed as a package with an entry point in the
``splinescope.probes`` group, is listed, configured, run, stored and reported — with no
file of splinescope edited."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN = '''
from dataclasses import dataclass, field

import torch

from splinescope.monitor import Outputs, ProbeResult, ScalarKey
from splinescope.nn.guard import measuring


@dataclass(frozen=True)
class MarginProbe:
    """Mean logit margin (top-1 minus top-2 logit) on the test points."""

    n_points: int = 100
    name: str = "margin"
    needs: tuple = field(default=("test",), init=False, repr=False)

    def outputs(self):
        return Outputs((
            ScalarKey("mean_margin", "mean logit margin", "logit units", headline=True),
            ScalarKey("share_below_*", "share of test points with margin below a threshold"),
        ))

    def compute(self, model, ctx):
        with measuring(model):
            top = model(ctx.x_test[: self.n_points]).topk(2, dim=1).values
        margin = (top[:, 0] - top[:, 1]).double()
        return ProbeResult(scalars={
            "mean_margin": float(margin.mean()),
            "share_below_0.1": float((margin < 0.1).double().mean()),
        })
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "margin_plugin").mkdir()
    (root / "margin_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "margin_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: margin-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[splinescope.probes]\nmargin = margin_plugin:MarginProbe\n"
    )
    return root


def _cli(plugin_path, *args, cwd):
    env = {**os.environ, "PYTHONPATH": str(plugin_path), "COLUMNS": "200"}
    command = [sys.executable, "-c", "from splinescope.cli import app; app()", *map(str, args)]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_an_installed_plugin_probe_runs_end_to_end(plugin_path, tmp_path):
    listed = _cli(plugin_path, "probes", cwd=tmp_path)
    assert "margin  Mean logit margin" in listed and "margin_plugin.MarginProbe" in listed
    config = tmp_path / "with-plugin.toml"
    config.write_text(
        'preset = "grok-digits"\nname = "plugin-run"\nsteps = 20\nwidth = 16\nn_train = 100\n'
        'schedule = "every:10"\n'
        '[[probes]]\nkind = "accuracy"\n'
        '[[probes]]\nkind = "margin"\nname = "margin_50"\nn_points = 50\nschedule = "steps:0,20"\n'
    )
    _cli(plugin_path, "run", config, "--runs-dir", tmp_path / "runs", "--quiet", cwd=tmp_path)

    from splinescope.store import load_metrics, load_probes

    metrics = load_metrics(tmp_path / "runs", "plugin-run")
    mine = metrics[metrics.probe == "margin_50"]
    assert sorted(set(mine["step"])) == [0, 20]
    assert set(mine["key"]) == {"mean_margin", "share_below_0.1"}
    assert sorted(set(metrics[metrics.probe == "accuracy"]["step"])) == [0, 10, 20]
    assert load_probes(tmp_path / "runs", "plugin-run")["margin_50"]["kind"] == "margin"

    _cli(
        plugin_path,
        "report",
        "plugin-run",
        "--runs-dir",
        tmp_path / "runs",
        "-o",
        tmp_path / "r.html",
        cwd=tmp_path,
    )
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'data-figure="probe-margin_50"' in page
    assert "mean logit margin" in page  # the declared label, in the last values and the panels
    assert "share of test points with margin below a threshold: 0.1" in page


def test_a_broken_plugin_is_listed_as_not_loaded(plugin_path, tmp_path):
    broken = tmp_path / "broken"
    info = broken / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[splinescope.probes]\nbroken = no_such_module:Probe\n")
    env = {**os.environ, "PYTHONPATH": str(broken), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", "from splinescope.cli import app; app()", "probes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0
    assert "not loaded: broken: no_such_module:Probe: ModuleNotFoundError" in done.stdout
