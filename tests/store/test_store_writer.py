"""RunStore writes: values, arrays, errors, statuses, batches, bad input, schema versions."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import torch

from splinescope.errors import SplinescopeError
from splinescope.store import (
    SCHEMA_VERSION,
    RunStore,
    db_path,
    get_run,
    load_arrays,
    load_errors,
    load_metrics,
    load_runs,
    run_dir,
)


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "runs") as s:
        yield s


def test_round_trip_of_scalars_errors_config_env_and_summary(store):
    d = store.runs_dir
    rid = store.create_run("demo", {"lr": 1e-3, "width": np.int64(200), "tags": ("a", "b")}, seed=7)
    store.log_scalars(rid, 1, "accuracy", {"train_acc": 0.25, "test_acc": np.float32(0.5)})
    store.log_scalars(rid, 2, "accuracy", {"train_acc": torch.tensor(0.75), "test_acc": 1})
    store.log_scalars(rid, 2, "loss", {"nan": float("nan"), "inf": math.inf})
    store.log_error(rid, 2, "lc", "ValueError: boom", "Traceback (most recent call last): ...")
    store.log_error(rid, None, "setup", "no step", "tb")
    store.set_summary(rid, {"interpolation_step": 2, "generalization_step": "not reached"})

    m = load_metrics(d, rid)
    assert list(m.columns) == ["step", "probe", "key", "value"]
    assert m["step"].dtype == np.int64 and m["value"].dtype == np.float64
    got = {(s, p, k): v for s, p, k, v in m.itertuples(index=False)}
    assert got[(1, "accuracy", "train_acc")] == 0.25
    assert got[(1, "accuracy", "test_acc")] == 0.5
    assert got[(2, "accuracy", "train_acc")] == 0.75
    assert got[(2, "accuracy", "test_acc")] == 1.0
    assert math.isnan(got[(2, "loss", "nan")]) and got[(2, "loss", "inf")] == math.inf
    assert len(m) == 6
    # Within a step, rows come in logging order.
    assert m[m["step"] == 1]["key"].tolist() == ["train_acc", "test_acc"]
    assert load_metrics(d, rid, probe="loss")["key"].tolist() == ["nan", "inf"]
    assert load_metrics(d, rid, probe="accuracy", key="test_acc")["value"].tolist() == [0.5, 1.0]

    e = load_errors(d, rid)
    assert e["step"].tolist()[0] == 2 and e["step"].isna().tolist() == [False, True]
    assert e["message"].tolist() == ["ValueError: boom", "no step"]
    assert e["traceback"].iloc[0].startswith("Traceback")

    run = get_run(d, rid)
    assert run["name"] == "demo" and run["status"] == "running" and run["last_step"] == 2
    assert run["config"] == {"lr": 1e-3, "width": 200, "tags": ["a", "b"]}
    assert run["summary"] == {"interpolation_step": 2, "generalization_step": "not reached"}
    env = run["env"]
    assert env["seed"] == 7 and env["torch"] == torch.__version__
    assert {"python", "splinescope", "torch", "numpy", "device", "hostname", "pid"} <= set(env)
    assert run["created_at"] <= run["updated_at"] == run["heartbeat"]


def test_relogging_a_step_replaces_the_value(store):
    rid = store.create_run("r", {})
    store.log_scalars(rid, 5, "p", {"a": 1.0})
    store.log_scalars(rid, 5, "p", {"a": 2.0})
    store.log_array(rid, 5, "p", "x", np.zeros(3))
    store.log_array(rid, 5, "p", "x", np.ones(2))
    m = load_metrics(store.runs_dir, rid)
    assert m["value"].tolist() == [2.0]
    a = load_arrays(store.runs_dir, rid)
    assert len(a) == 1 and np.array_equal(a["array"].iloc[0], np.ones(2))


def test_arrays_keep_dtype_shape_and_order_including_torch_tensors(store):
    rid = store.create_run("r", {})
    counts = np.arange(12, dtype=np.int64).reshape(4, 3)
    fortran = np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3))
    store.log_array(rid, 1, "lc", "train_counts", counts)
    store.log_array(rid, 1, "lc", "fortran", fortran)
    store.log_array(rid, 2, "hessian", "eigenvalues", torch.tensor([3.0, 1.0], dtype=torch.float16))
    a = load_arrays(store.runs_dir, rid)
    assert list(a.columns) == ["step", "probe", "key", "array"]
    assert a["key"].tolist() == ["train_counts", "fortran", "eigenvalues"]
    c, f, h = a["array"].tolist()
    assert c.dtype == np.int64 and c.shape == (4, 3) and np.array_equal(c, counts)
    assert f.dtype == np.dtype(">f8") and f.flags.f_contiguous and np.array_equal(f, fortran)
    assert h.dtype == np.float16 and h.tolist() == [3.0, 1.0]
    assert load_arrays(store.runs_dir, rid, probe="lc", key="fortran")["step"].tolist() == [1]
    with pytest.raises(SplinescopeError, match="object"):
        store.log_array(rid, 3, "lc", "bad", np.array([{}, 1], dtype=object))


def test_bad_input_is_refused_with_the_field_named(store):
    rid = store.create_run("r", {})
    with pytest.raises(SplinescopeError, match="'acc'"):
        store.log_scalars(rid, 1, "p", {"acc": "high"})
    with pytest.raises(SplinescopeError, match="step must be an integer"):
        store.log_scalars(rid, 1.5, "p", {"a": 1.0})
    with pytest.raises(SplinescopeError, match="probe must be a non-empty string"):
        store.log_scalars(rid, 1, "", {"a": 1.0})
    with pytest.raises(SplinescopeError, match="unknown run id 'feedfeedfeed'"):
        store.log_scalars("feedfeedfeed", 1, "p", {"a": 1.0})
    with pytest.raises(SplinescopeError, match="unknown run id"):
        store.set_status("feedfeedfeed", "finished")
    with pytest.raises(
        SplinescopeError, match=r"\['running', 'finished', 'crashed', 'interrupted', 'diverged'\]"
    ):
        store.set_status(rid, "done")
    with pytest.raises(SplinescopeError, match="config cannot be stored as JSON"):
        store.create_run("x", {"model": object()})
    with pytest.raises(SplinescopeError, match="seed must be an integer"):
        store.create_run("x", {}, seed=1.5)
    # Nothing of the refused calls was written.
    assert len(load_metrics(store.runs_dir, rid)) == 0
    assert load_runs(store.runs_dir)["name"].tolist() == ["r"]


def test_batch_commits_all_at_exit_and_nothing_on_error(store):
    d = store.runs_dir
    rid = store.create_run("r", {})
    with store.batch():
        for step in range(10):
            store.log_scalars(rid, step, "p", {"a": step, "b": -step})
            with store.batch():  # nested: still one transaction
                store.log_array(rid, step, "p", "x", np.full(2, step))
        assert len(load_metrics(d, rid)) == 0  # buffered, not yet visible
    assert len(load_metrics(d, rid)) == 20 and len(load_arrays(d, rid)) == 10

    with pytest.raises(RuntimeError), store.batch():
        store.log_scalars(rid, 99, "p", {"a": 1.0})
        store.set_status(rid, "finished")
        raise RuntimeError("probe died")
    assert 99 not in load_metrics(d, rid)["step"].tolist()
    assert get_run(d, rid)["status"] == "running"

    # A bad row in a batch fails the whole batch at commit.
    with pytest.raises(SplinescopeError, match="unknown run id"), store.batch():
        store.log_scalars(rid, 100, "p", {"a": 1.0})
        store.log_scalars("feedfeedfeed", 100, "p", {"a": 1.0})
    assert 100 not in load_metrics(d, rid)["step"].tolist()


def test_statuses_and_ownership(tmp_path):
    d = tmp_path / "runs"
    store = RunStore(d)
    rid = store.create_run("r", {})
    for status in ("finished", "interrupted", "crashed"):
        store.set_status(rid, status)
        assert get_run(d, rid)["status"] == status
    store.close()
    with pytest.raises(SplinescopeError, match="closed"):
        store.log_scalars(rid, 1, "p", {"a": 1.0})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _set_owner(d, rid, **cols):
    con = sqlite3.connect(db_path(d))
    sets = ", ".join(f"{k} = ?" for k in cols)
    con.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*cols.values(), rid))
    con.commit()
    con.close()


def test_a_running_run_whose_process_is_gone_reads_as_crashed(store):
    d = store.runs_dir
    rid = store.create_run("r", {})
    done = store.create_run("done", {})
    store.set_status(done, "finished")
    assert get_run(d, rid)["status"] == "running"  # owned by this live process

    dead = _dead_pid()
    _set_owner(d, rid, pid=dead)
    _set_owner(d, done, pid=dead)
    runs = load_runs(d).set_index("name")
    assert runs.loc["r", "status"] == "crashed"
    assert runs.loc["done", "status"] == "finished"  # only "running" is second-guessed

    # Our own pid, but another process start time: the pid was reused.
    _set_owner(d, rid, pid=os.getpid(), pid_start="1")
    assert get_run(d, rid)["status"] == "crashed"

    # Resuming ("running" again) makes this process the owner.
    store.set_status(rid, "running")
    assert get_run(d, rid)["status"] == "running"

    # A run from another host: only its heartbeat can tell.
    _set_owner(d, rid, hostname="elsewhere.invalid", pid=1)
    assert get_run(d, rid)["status"] == "running"
    assert get_run(d, rid, stale_after_s=-1.0)["status"] == "crashed"
    _set_owner(d, rid, heartbeat=0.0)
    assert get_run(d, rid)["status"] == "crashed"
    assert store.heartbeat(rid, force=True) is True
    assert get_run(d, rid)["status"] == "running"


def test_heartbeat_is_rate_limited(tmp_path):
    store = RunStore(tmp_path, heartbeat_interval_s=3600)
    rid = store.create_run("r", {})
    assert store.heartbeat(rid) is False  # create_run just beat
    assert store.heartbeat(rid, force=True) is True
    with pytest.raises(SplinescopeError, match="unknown run id"):
        store.heartbeat("feedfeedfeed")


def test_unwritable_runs_dir_is_refused_before_anything_is_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(
        SplinescopeError, match=r"runs_dir '.*file/runs' is not a writable directory"
    ):
        RunStore(blocker / "runs")
    assert blocker.read_text() == "not a directory"
    with pytest.raises(SplinescopeError, match="not a writable directory"):
        RunStore(blocker)


def test_schema_version_mismatch_names_both_versions(tmp_path):
    RunStore(tmp_path).close()
    con = sqlite3.connect(db_path(tmp_path))
    con.execute("PRAGMA user_version = 99")
    con.close()
    pattern = f"schema version 99, but this splinescope reads schema version {SCHEMA_VERSION}"
    with pytest.raises(SplinescopeError, match=pattern):
        RunStore(tmp_path)
    with pytest.raises(SplinescopeError, match=pattern):
        load_runs(tmp_path)


def test_a_foreign_sqlite_file_is_not_taken_for_a_store(tmp_path):
    con = sqlite3.connect(db_path(tmp_path))
    con.execute("CREATE TABLE other (x)")
    con.close()
    with pytest.raises(SplinescopeError, match="not a splinescope run store"):
        RunStore(tmp_path)


def test_run_dir(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run("r", {})
    path = run_dir(tmp_path, rid)
    assert path == tmp_path / rid and path.is_dir()
    assert not run_dir(tmp_path, "0" * 12, create=False).exists()
    with pytest.raises(SplinescopeError, match="full 12-hex-digit run id"):
        run_dir(tmp_path, "../escape")


def test_readers_do_not_wait_for_a_writer_and_a_stuck_lock_gives_a_clear_error(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run("r", {})
    store.log_scalars(rid, 1, "p", {"a": 1.0})
    other = sqlite3.connect(db_path(tmp_path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    other.execute("UPDATE runs SET name = 'renamed'")
    try:
        assert load_metrics(tmp_path, rid)["value"].tolist() == [1.0]  # WAL: no waiting
        assert get_run(tmp_path, rid)["name"] == "r"  # uncommitted writes are not seen
        impatient = RunStore(tmp_path, timeout_s=0.2)
        with pytest.raises(SplinescopeError, match="timeout_s=0.2"):
            impatient.log_scalars(rid, 2, "p", {"a": 2.0})
    finally:
        other.execute("COMMIT")
        other.close()
    impatient.log_scalars(rid, 2, "p", {"a": 2.0})
    assert load_metrics(tmp_path, rid)["value"].tolist() == [1.0, 2.0]
    assert get_run(tmp_path, "renamed")["run_id"] == rid


def test_wal_mode_and_synchronous_levels(tmp_path):
    plain, durable = RunStore(tmp_path), RunStore(tmp_path, durable=True)
    assert plain._con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert plain._con.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert durable._con.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    rid = durable.create_run("r", {})
    durable.log_scalars(rid, 1, "p", {"a": 1.0})
    assert load_metrics(tmp_path, rid)["value"].tolist() == [1.0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_writes_through_its_own_connection(tmp_path):
    store = RunStore(tmp_path)
    rid = store.create_run("r", {})
    store.log_scalars(rid, 0, "p", {"a": 0.0})
    pid = os.fork()
    if pid == 0:  # child: write through the inherited RunStore, then leave at once
        code = 0
        try:
            store.log_scalars(rid, 1, "p", {"a": 1.0})
            store.close()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.log_scalars(rid, 2, "p", {"a": 2.0})  # the parent's connection still works
    assert load_metrics(tmp_path, rid)["value"].tolist() == [0.0, 1.0, 2.0]
