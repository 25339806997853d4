"""The sweep record: registration rules, claims (one live owner per point), attempts and
retries, and the in-place upgrade of a version-2 store."""

import multiprocessing
import sqlite3

import pytest

from splinescope.errors import SplinescopeError
from splinescope.store import SCHEMA_VERSION, RunStore, _db, db_path, load_runs
from splinescope.store.sweeps import (
    Claim,
    PointSpec,
    claim_point,
    load_sweep,
    record_attempt,
    register_sweep,
    release_claims,
    set_point_run,
    sweep_names,
)

POINTS = [PointSpec(f"s/x={i}", i, {"x": i}, {"x": i, "name": f"s/x={i}"}) for i in range(3)]


def _claim_in_child(runs_dir, queue):
    queue.put(claim_point(runs_dir, "s", "s/x=0"))


def test_register_then_check_against_the_record(tmp_path):
    assert register_sweep(tmp_path, "s", {"v": 1}, ["x"], POINTS[:2]) == ["s/x=0", "s/x=1"]
    assert register_sweep(tmp_path, "s", {"v": 1}, ["x"], POINTS) == ["s/x=2"]  # grows
    changed = [PointSpec("s/x=0", 0, {"x": 0}, {"x": 9, "name": "s/x=0"}), *POINTS[1:]]
    with pytest.raises(SplinescopeError, match="point 's/x=0' is recorded with another config"):
        register_sweep(tmp_path, "s", {"v": 1}, ["x"], changed)
    with pytest.raises(SplinescopeError, match="no longer has: s/x=2"):
        register_sweep(tmp_path, "s", {"v": 1}, ["x"], POINTS[:2])
    assert sweep_names(tmp_path) == ["s"]
    record = load_sweep(tmp_path, "s")
    assert record.points["state"].tolist() == ["pending"] * 3 and record.axes == ("x",)
    with pytest.raises(SplinescopeError, match="no sweep 't'.*recorded sweeps: s"):
        load_sweep(tmp_path, "t")


def test_a_claim_excludes_other_live_processes_until_released(tmp_path):
    register_sweep(tmp_path, "s", {}, ["x"], POINTS)
    claim = claim_point(tmp_path, "s", "s/x=0")
    assert isinstance(claim, Claim) and claim.run_id is None and claim.attempts == 0
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_claim_in_child, args=(str(tmp_path), queue))
    child.start()
    assert queue.get(timeout=60) == "busy"
    child.join()
    assert load_sweep(tmp_path, "s").points["claimed_by"].iloc[0] is not None
    release_claims(tmp_path, "s")
    child = ctx.Process(target=_claim_in_child, args=(str(tmp_path), queue))
    child.start()
    assert isinstance(queue.get(timeout=60), Claim)  # free again (the child then died)
    child.join()
    assert isinstance(claim_point(tmp_path, "s", "s/x=0"), Claim)  # a dead claim is free


def test_attempts_retry_then_fail_and_a_finished_run_finishes_its_point(tmp_path):
    register_sweep(tmp_path, "s", {}, ["x"], POINTS)
    for expected in ("pending", "failed"):
        claim_point(tmp_path, "s", "s/x=1")
        state = record_attempt(
            tmp_path,
            "s",
            "s/x=1",
            run_id=None,
            outcome="failed",
            started_at=0.0,
            max_attempts=2,
            message="boom",
            traceback="tb",
        )
        assert state == expected
    assert claim_point(tmp_path, "s", "s/x=1") == "failed"
    assert isinstance(claim_point(tmp_path, "s", "s/x=1", retry_failed=True), Claim)
    log = load_sweep(tmp_path, "s").attempts_log
    assert log["outcome"].tolist() == ["failed", "failed"] and log["message"].iloc[0] == "boom"

    # a run that finished while nobody recorded it (the sweep died): the point is finished
    with RunStore(tmp_path) as store:
        rid = store.create_run("s/x=2", {"x": 2})
        store.set_status(rid, "finished")
    set_point_run(tmp_path, "s", "s/x=2", rid)
    assert claim_point(tmp_path, "s", "s/x=2") == "finished"
    row = load_sweep(tmp_path, "s").points.set_index("point").loc["s/x=2"]
    assert (row["state"], row["run_id"], row["run_status"]) == ("finished", rid, "finished")
    # a run still running in a live process keeps its point busy
    with RunStore(tmp_path) as store:
        live = store.create_run("s/x=0", {"x": 0})
    set_point_run(tmp_path, "s", "s/x=0", live)
    assert load_runs(tmp_path).set_index("run_id").loc[live, "status"] == "running"
    assert claim_point(tmp_path, "s", "s/x=0") == "busy"


def test_a_version_2_store_is_upgraded_in_place(tmp_path):
    with RunStore(tmp_path) as store:
        rid = store.create_run("old", {})
    con = sqlite3.connect(db_path(tmp_path))
    for table in ("sweep_attempts", "sweep_points", "sweeps"):
        con.execute(f"DROP TABLE {table}")
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    assert sweep_names(tmp_path) == []  # readable as it is
    register_sweep(tmp_path, "s", {}, ["x"], POINTS)  # opening for writing upgrades
    con = sqlite3.connect(db_path(tmp_path))
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert {"sweeps", "sweep_points", "sweep_attempts"} <= tables
    assert load_runs(tmp_path)["run_id"].tolist() == [rid]
    assert {1, 2, 3} <= set(_db.READABLE_VERSIONS)
