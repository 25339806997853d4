"""Sweeps with populations: stackable points are grouped, each point is still its own run
with the metrics of a separate run (the oracle: the same sweep with populations off), a
member fails alone, and a killed population worker loses nothing and runs nothing twice."""

from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest
from sweep_helpers import TINY_SET, tiny_spec

from splinescope.errors import SplinescopeError
from splinescope.store import get_run, load_metrics, load_runs
from splinescope.store.sweeps import load_sweep
from splinescope.sweep import expand, parse_spec, run_sweep
from splinescope.sweep._worker import Task
from splinescope.sweep.population import PopulationTask, plan_groups, run_population_task


def _by_point(runs_dir, name):
    points = load_sweep(runs_dir, name).points.set_index("point")
    return {
        p: load_metrics(runs_dir, points.loc[p, "run_id"]).reset_index(drop=True)
        for p in points.index
    }


def test_stackable_points_are_grouped_into_at_most_slots_populations():
    spec = tiny_spec(grid={"init_scale": [1, 2, 4], "weight_decay": [0.0, 0.1]}, seeds=[0, 1])
    points = expand(spec)
    groups = plan_groups(points, slots=2)
    assert set(groups) == {p.name for p in points}
    assert len(set(groups.values())) == 2 and {len(g) for g in groups.values()} == {6}
    assert len(set(plan_groups(points, slots=2, max_size=4).values())) == 3
    assert plan_groups(points, slots=12) == {}  # one point per slot: nothing to share
    # a depth axis changes the architecture: those points never share a population
    deep = expand(tiny_spec(grid={"depth": [1, 2]}, seeds=[0, 1, 2, 3]))
    groups = plan_groups(deep, slots=1)
    assert len(set(groups.values())) == 2
    for group in groups.values():
        assert len({p.config.depth for p in deep if p.name in group}) == 1


def test_the_spec_field_turns_populations_off():
    assert tiny_spec().population is True
    assert tiny_spec(population=False).population is False
    assert tiny_spec(population=False).to_dict()["population"] is False
    with pytest.raises(SplinescopeError, match="'population'"):
        tiny_spec(population="yes")


@pytest.fixture(scope="module")
def separate_sweep(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("separate")
    spec = tiny_spec("pop", grid={"init_scale": [1, 4], "weight_decay": [0.0, 0.1]})
    run_sweep(spec, runs_dir, backend="pool", jobs=2, population=False)
    return spec, runs_dir


@pytest.mark.slow
def test_a_population_sweep_stores_each_point_as_its_separate_run(separate_sweep, tmp_path):
    spec, sep_dir = separate_sweep
    events = []
    result = run_sweep(spec, tmp_path, backend="pool", jobs=2, on_event=events.append)
    assert result.counts == {"finished": 8}
    assert sorted(e.point for e in events if e.kind == "started") == sorted(
        p.name for p in expand(spec)
    )
    ours, theirs = (load_sweep(d, spec.name).points.set_index("point") for d in (tmp_path, sep_dir))
    assert len(load_runs(tmp_path)) == 8 and ours["attempts"].eq(0).all()
    for point in ours.index:
        a, b = (
            get_run(tmp_path, ours.loc[point, "run_id"]),
            get_run(sep_dir, theirs.loc[point, "run_id"]),
        )
        assert a["name"] == point and a["config"] == b["config"] and a["summary"] == b["summary"]
        assert ours.loc[point, "coords"] == theirs.loc[point, "coords"]
    got, want = _by_point(tmp_path, spec.name), _by_point(sep_dir, spec.name)
    for point in want:
        pd.testing.assert_frame_equal(got[point], want[point])
    # the populations really ran: two worker processes for eight runs
    pids = {r["pid"] for r in load_runs(tmp_path)["env"]}
    assert len(pids) == 2


def test_a_member_fails_alone(tmp_path):
    spec = tiny_spec("alone", set_={**TINY_SET, "steps": 5, "schedule": "every:5"})
    points = expand(spec)[:2]
    from splinescope.store.sweeps import PointSpec, register_sweep

    register_sweep(
        tmp_path,
        spec.name,
        spec.to_dict(),
        spec.axis_names,
        [PointSpec(p.name, p.index, p.coords, p.config.to_dict()) for p in points],
    )
    tasks = tuple(
        Task(spec.name, p.name, p.config.to_dict(), resume, str(tmp_path), 1)
        for p, resume in zip(points, ("no-such-run", None), strict=True)
    )
    first, second = run_population_task(PopulationTask(tasks))
    assert first.outcome == "failed" and "no-such-run" in first.message
    assert "Traceback" in first.traceback
    assert second.outcome == "finished"
    assert get_run(tmp_path, second.run_id)["status"] == "finished"
    assert (
        load_sweep(tmp_path, spec.name).points.set_index("point").loc[points[1].name, "run_id"]
        == second.run_id
    )


KILL_SET = {"steps": 300, "schedule": "every:30"}


@pytest.mark.slow
def test_a_killed_population_worker_retries_its_points_from_their_checkpoints(
    separate_sweep, tmp_path
):
    spec = tiny_spec("kill", set_=KILL_SET, grid={"init_scale": [1, 4]}, seeds=[0, 1])
    reference = tmp_path / "reference"
    run_sweep(spec, reference, backend="pool", jobs=1, population=False)
    runs_dir = tmp_path / "runs"
    killed: dict = {}

    def assassin():
        end = time.monotonic() + 240
        while time.monotonic() < end:
            try:
                runs = load_runs(runs_dir)
            except Exception:  # noqa: BLE001 - the store may not exist yet
                runs = None
            if runs is not None and len(runs) == 4:
                live = runs[(runs["status"] == "running") & runs["last_step"].fillna(0).gt(30)]
                if len(live):
                    killed.update(pid=int(live.iloc[0]["env"]["pid"]))
                    killed["names"] = set(
                        runs["name"][runs["env"].map(lambda e: e["pid"]) == killed["pid"]]
                    )
                    os.kill(killed["pid"], signal.SIGKILL)
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=assassin, daemon=True)
    thread.start()
    events = []
    # one slot: all four points in one population, so the kill takes all of them
    result = run_sweep(spec, runs_dir, backend="pool", jobs=1, on_event=events.append)
    thread.join(timeout=5)
    assert killed and len(killed["names"]) == 4
    assert result.counts == {"finished": 4}
    kinds = {(e.kind, e.point) for e in events}
    for name in killed["names"]:
        assert ("retry", name) in kinds and ("resumed", name) in kinds
    record = load_sweep(runs_dir, "kill")
    assert record.points["attempts"].tolist() == [1, 1, 1, 1]
    assert len(load_runs(runs_dir)) == 4  # resumed under their ids: nothing run twice
    want = _by_point(reference, "kill")
    for point, frame in _by_point(runs_dir, "kill").items():
        pd.testing.assert_frame_equal(frame, want[point])


def test_parse_spec_accepts_population_in_toml_tables():
    spec = parse_spec(
        {"name": "x", "base": "grok-digits", "population": False, "set": TINY_SET, "seeds": [0]}
    )
    assert spec.population is False


def test_the_cli_flag_turns_populations_off(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import splinescope.sweep.commands as commands
    from splinescope.cli import app

    seen = {}

    def fake_run_sweep(spec, runs_dir, **kwargs):
        seen.update(kwargs)
        raise SplinescopeError("stop here")

    monkeypatch.setattr(commands, "run_sweep", fake_run_sweep)
    runner = CliRunner(env={"COLUMNS": "200"})
    for flags, want in (([], None), (["--no-population"], False)):
        result = runner.invoke(app, ["sweep", "omnigrok-digits", "-d", str(tmp_path), *flags])
        assert "stop here" in result.output and seen["population"] is want
