"""report_command and export_command against a real run store: runs by id, prefix or name;
clear errors for unknown runs, bad outputs and bad targets; live and empty runs reported."""

from __future__ import annotations

import json
import re
import sys

import pytest

from splinescope import SplinescopeError
from splinescope.export.commands import export_command
from splinescope.report import report_command
from splinescope.store import load_metrics, load_runs, resolve_run


def _data_values(page: str, attr: str) -> dict[tuple[str, str], object]:
    pattern = rf'data-run="([^"]+)" {attr}="([^"]+)" data-value="([^"]*)"'
    return {(r, k): json.loads(v.replace("&quot;", '"')) for r, k, v in re.findall(pattern, page)}


def test_report_of_one_run_by_name_shows_the_store_numbers(runs_dir, tmp_path):
    out = report_command(["grok-digits"], runs_dir, tmp_path / "report.html")
    page = out.read_text(encoding="utf-8")
    run_id = resolve_run(runs_dir, "grok-digits")
    stored = load_runs(runs_dir).set_index("run_id").loc[run_id]
    summary = _data_values(page, "data-summary-key")
    assert {k: v for (r, k), v in summary.items() if r == run_id} == stored["summary"]
    metrics = load_metrics(runs_dir, run_id)
    last = metrics.sort_values("step").groupby(["probe", "key"]).last()
    shown = _data_values(page, "data-metric")
    assert len(shown) >= 10
    for (_, metric), value in shown.items():
        probe, key = metric.split("/", 1)
        assert value == last.loc[(probe, key), "value"]
    assert "Lanczos did not converge" in page and "<h2>Partition slices</h2>" in page
    assert "&quot;" not in stored["env"]["python"] and stored["env"]["python"] in page


def test_report_of_several_runs_by_id_prefix_and_name_dedupes(runs_dir, tmp_path):
    run_id = resolve_run(runs_dir, "grok-digits")
    # Ids are 8 hex digits of seconds + 4 random: runs made in one second share 8 or more.
    others = [i for i in load_runs(runs_dir)["run_id"] if i != run_id]
    n = next(n for n in range(9, len(run_id)) if not any(o.startswith(run_id[:n]) for o in others))
    out = report_command([run_id[:n], "grok-digits-live", run_id], runs_dir, tmp_path / "two.html")
    page = out.read_text(encoding="utf-8")
    assert "<h1>splinescope report: 2 runs</h1>" in page and "<h2>Comparison</h2>" in page
    live_id = resolve_run(runs_dir, "grok-digits-live")
    assert f'data-live="{live_id}"' in page and "up to step 3,000" in page


def test_report_of_a_run_without_metrics_says_so(runs_dir, tmp_path):
    page = report_command(["fresh"], runs_dir, tmp_path / "f.html").read_text(encoding="utf-8")
    assert "No metrics logged yet" in page and "<body data-figures='0'>" in page
    assert "<h3>Configuration</h3>" in page and "preset" in page


def test_bad_report_input_gets_clear_errors(runs_dir, tmp_path):
    with pytest.raises(SplinescopeError, match=r"no run 'grok-digit' .*close matches: grok-digits"):
        report_command(["grok-digit"], runs_dir, tmp_path / "x.html")
    with pytest.raises(SplinescopeError, match="runs: give at least one RUN"):
        report_command([], runs_dir, tmp_path / "x.html")
    with pytest.raises(SplinescopeError, match="is a directory"):
        report_command(["grok-digits"], runs_dir, tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(SplinescopeError, match="cannot create its folder"):
        report_command(["grok-digits"], runs_dir, tmp_path / "file" / "r.html")
    with pytest.raises(SplinescopeError, match="runs_dir .*does not exist"):
        report_command(["grok-digits"], tmp_path / "nowhere", tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_bad_export_input_gets_clear_errors(runs_dir, tmp_path):
    with pytest.raises(
        SplinescopeError,
        match=r"to 'wandb': unknown export target; choose one of \['tensorboard', 'mlflow'\]",
    ):
        export_command("grok-digits", runs_dir, "wandb", str(tmp_path))
    with pytest.raises(
        SplinescopeError,
        match=r"dest 'http://example:5000'.*'file:<folder>' or 'sqlite:///<file>.db'",
    ):
        export_command("grok-digits", runs_dir, "mlflow", "http://example:5000")
    with pytest.raises(SplinescopeError, match="no run 'nope'"):
        export_command("nope", runs_dir, "tensorboard", str(tmp_path))


@pytest.mark.parametrize(
    ("to", "dest", "hidden", "hint"),
    [
        (
            "tensorboard",
            "tb",
            "torch.utils.tensorboard",
            r"pip install 'splinescope\[tensorboard\]'",
        ),
        ("MLflow", "file:./mlruns", "mlflow.tracking", r"pip install 'splinescope\[mlflow\]'"),
    ],
)
def test_a_missing_extra_names_its_pip_command(
    runs_dir, tmp_path, monkeypatch, to, dest, hidden, hint
):
    monkeypatch.setitem(sys.modules, hidden, None)  # import now fails as if not installed
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        SplinescopeError, match=rf"export --to {to.lower()} needs the .* package: {hint}"
    ):
        export_command("grok-digits", runs_dir, to, dest)
    assert list(tmp_path.iterdir()) == []  # nothing written
