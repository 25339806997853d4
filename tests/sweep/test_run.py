"""Sweeps run end to end on tiny configs: the pool and Ray give the metrics of an in-process
run of the same config (the oracle); reruns skip finished points; failures are recorded and
retried; a killed sweep, or a killed worker, loses nothing and runs nothing twice."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sweep_helpers import TINY_SET, tiny_spec

from splinescope.store import load_metrics, load_runs
from splinescope.store.sweeps import load_sweep
from splinescope.sweep import expand, run_sweep
from splinescope.sweep._worker import set_threads
from splinescope.train import train


def _metrics(runs_dir, run_id) -> pd.DataFrame:
    return load_metrics(runs_dir, run_id).reset_index(drop=True)


def _by_point(runs_dir, name):
    points = load_sweep(runs_dir, name).points.set_index("point")
    return {p: _metrics(runs_dir, points.loc[p, "run_id"]) for p in points.index}


@pytest.fixture(scope="module")
def pool_sweep(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("pool")
    spec = tiny_spec()
    result = run_sweep(spec, runs_dir, backend="pool", jobs=2)
    return spec, runs_dir, result


@pytest.mark.slow
def test_the_pool_finishes_every_point_with_the_metrics_of_an_in_process_run(pool_sweep, tmp_path):
    spec, runs_dir, result = pool_sweep
    assert result.counts == {"finished": 4}
    points = result.points.set_index("point")
    assert list(points.index) == [p.name for p in expand(spec)]
    assert points["run_status"].eq("finished").all() and points["attempts"].eq(0).all()
    runs = load_runs(runs_dir)
    assert len(runs) == 4 and set(runs["name"]) == set(points.index)
    # oracle: the same config trained here, one thread as in the pool
    point = expand(spec)[3]
    threads = __import__("torch").get_num_threads()
    set_threads(1)
    try:
        reference = train(point.config, runs_dir=tmp_path)
    finally:
        set_threads(threads)
    got = _metrics(runs_dir, points.loc[point.name, "run_id"])
    pd.testing.assert_frame_equal(got, _metrics(tmp_path, reference.run_id))
    # seeds differ, so do their runs
    other = _metrics(runs_dir, points.loc[expand(spec)[2].name, "run_id"])
    assert not got["value"].equals(other["value"])


@pytest.mark.slow
def test_rerunning_a_finished_sweep_runs_nothing(pool_sweep):
    spec, runs_dir, first = pool_sweep
    events = []
    again = run_sweep(spec, runs_dir, backend="pool", jobs=2, on_event=events.append)
    assert {e.kind for e in events} == {"skipped"} and len(events) == 4
    assert again.points["run_id"].tolist() == first.points["run_id"].tolist()
    assert len(load_runs(runs_dir)) == 4


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_retried_once(tmp_path):
    spec = tiny_spec("bad", set_={"data_options.bogus": 1}, grid={"init_scale": [1]}, seeds=[0])
    events = []
    result = run_sweep(spec, tmp_path, backend="pool", jobs=1, on_event=events.append)
    assert [e.kind for e in events] == ["started", "retry", "started", "failed"]
    record = load_sweep(tmp_path, "bad")
    assert record.points["state"].tolist() == ["failed"] and result.counts == {"failed": 1}
    assert record.points["attempts"].tolist() == [2]
    log = record.attempts_log
    assert log["outcome"].tolist() == ["failed", "failed"]
    assert "unknown option(s) 'bogus'" in log["message"].iloc[0]
    assert "Traceback" in log["traceback"].iloc[0]
    events.clear()
    run_sweep(spec, tmp_path, backend="pool", jobs=1, on_event=events.append)
    assert [e.kind for e in events] == ["gave-up"]  # retried only with retry_failed


@pytest.mark.slow
def test_ray_finishes_the_sweep_with_the_pools_metrics(pool_sweep, tmp_path):
    ray = pytest.importorskip("ray")
    spec, pool_dir, _ = pool_sweep
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        from splinescope.sweep.executors import RayExecutor

        executor = RayExecutor(num_cpus=1, num_gpus=0)
        result = run_sweep(spec, tmp_path, backend="ray", executor=executor)
    finally:
        ray.shutdown()
    assert result.counts == {"finished": 4}
    pool, remote = _by_point(pool_dir, spec.name), _by_point(tmp_path, spec.name)
    assert pool.keys() == remote.keys()
    for point in pool:
        pd.testing.assert_frame_equal(pool[point], remote[point])
    # the driver's store is the only one: every run arrived with its files
    for run_id in result.points["run_id"]:
        assert (tmp_path / run_id / "checkpoint.pt").is_file()


# -- kills ----------------------------------------------------------------------------------

SLOW_SET = {**TINY_SET, "steps": 300, "schedule": "every:30"}
SPEC_TOML = """
name = "kill"
base = "grok-digits"
threads = 1
seeds = [0, 1]
[grid]
init_scale = [1, 4]
[set]
"""


def _write_spec(path: Path) -> Path:
    lines = [
        f'"{k}" = {v!r}' if isinstance(v, str) else f'"{k}" = {v}' for k, v in SLOW_SET.items()
    ]
    path.write_text(SPEC_TOML + "\n".join(lines).replace("'", '"') + "\n")
    return path


def _wait_for(predicate, timeout=240.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError("timed out")


def _running_with_checkpoint(runs_dir):
    try:
        runs = load_runs(runs_dir)
    except Exception:
        return None
    live = runs[(runs["status"] == "running") & runs["last_step"].fillna(0).gt(30)]
    return live.iloc[0].to_dict() if len(live) else None


@pytest.fixture(scope="module")
def kill_reference(tmp_path_factory):
    """The metrics of the kill tests' sweep, run without interruption."""
    runs_dir = tmp_path_factory.mktemp("ref")
    spec = tiny_spec("kill", set_={k: v for k, v in SLOW_SET.items() if k in ("steps", "schedule")})
    run_sweep(spec, runs_dir, backend="pool", jobs=2)
    return _by_point(runs_dir, "kill")


@pytest.mark.slow
def test_killing_the_sweep_then_rerunning_it_loses_nothing_and_runs_nothing_twice(
    tmp_path, kill_reference
):
    spec_file = _write_spec(tmp_path / "kill.toml")
    runs_dir = tmp_path / "runs"
    cli = str(Path(sys.executable).parent / "splinescope")
    cmd = [cli, "sweep", str(spec_file), "-d", str(runs_dir), "--jobs", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    victim = _wait_for(lambda: _running_with_checkpoint(runs_dir))
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    # its workers notice, save and stop: nothing stays "running"
    _wait_for(lambda: not (load_runs(runs_dir)["status"] == "running").any(), 60)
    before = load_runs(runs_dir).set_index("run_id")
    assert before.loc[victim["run_id"], "status"] == "interrupted"
    finished_before = set(before.index[before["status"] == "finished"])

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resumed {victim['name']} run {victim['run_id']}" in again.stdout
    record = load_sweep(runs_dir, "kill").points.set_index("point")
    assert record["state"].eq("finished").all()
    after = load_runs(runs_dir).set_index("run_id")
    # nothing run twice: one run per point (interrupted ones resumed under their ids), and
    # the runs finished before the kill are untouched
    assert len(after) == 4 and set(after.index) == set(record["run_id"])
    for run_id in finished_before:
        assert after.loc[run_id, "updated_at"] == before.loc[run_id, "updated_at"]
    # nothing lost: every point's metrics equal an uninterrupted sweep's
    reference = kill_reference
    for point, frame in _by_point(runs_dir, "kill").items():
        pd.testing.assert_frame_equal(frame, reference[point])


@pytest.mark.slow
def test_a_killed_worker_is_a_failed_attempt_retried_from_its_checkpoint(tmp_path, kill_reference):
    import threading

    spec = tiny_spec("kill", set_={k: v for k, v in SLOW_SET.items() if k in ("steps", "schedule")})
    runs_dir = tmp_path / "runs"
    killed = {}

    def assassin():
        victim = _wait_for(lambda: _running_with_checkpoint(runs_dir))
        killed.update(run_id=victim["run_id"], name=victim["name"])
        os.kill(int(victim["env"]["pid"]), signal.SIGKILL)

    thread = threading.Thread(target=assassin, daemon=True)
    thread.start()
    events = []
    result = run_sweep(
        spec, runs_dir, backend="pool", jobs=2, on_event=events.append, population=False
    )  # one run per worker (tests/sweep/test_sweep_population.py kills a population's worker)
    thread.join(timeout=5)
    assert result.counts == {"finished": 4}
    kinds = {(e.kind, e.point) for e in events}
    assert ("retry", killed["name"]) in kinds and ("resumed", killed["name"]) in kinds
    record = load_sweep(runs_dir, "kill")
    row = record.points.set_index("point").loc[killed["name"]]
    assert row["attempts"] == 1 and row["run_id"] == killed["run_id"]
    failed = record.attempts_log[record.attempts_log["outcome"] == "failed"]
    assert failed["point"].tolist() == [killed["name"]]
    assert "worker process died" in failed["message"].iloc[0]
    assert len(load_runs(runs_dir)) == 4
    reference = kill_reference
    for point, frame in _by_point(runs_dir, "kill").items():
        pd.testing.assert_frame_equal(frame, reference[point])
