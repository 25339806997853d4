"""Store merge: ids kept, idempotent, newer copies win, conflicting ids refused with nothing
written; the oracle is a row-by-row dump of both stores."""

import sqlite3

import numpy as np
import pytest

from splinescope.errors import SplinescopeError
from splinescope.store import RunStore, db_path, load_metrics, load_runs
from splinescope.store.merge import merge_stores
from splinescope.store.sweeps import PointSpec, load_sweep, register_sweep


def _run(runs_dir, name, values, status="finished"):
    with RunStore(runs_dir) as store:
        rid = store.create_run(name, {"lr": 1e-3, "name": name}, seed=0)
        for step, v in enumerate(values):
            store.log_scalars(rid, step, "accuracy", {"test_acc": v})
        store.log_array(rid, 0, "units", "codes", np.arange(6).reshape(2, 3))
        store.log_error(rid, 1, "lc", "boom", "Traceback ...")
        store.set_probes(rid, {"accuracy": {"kind": "accuracy"}})
        store.set_status(rid, status)
    (runs_dir / rid / "models").mkdir(parents=True)
    (runs_dir / rid / "models" / "step_000000000.pt").write_bytes(b"weights")
    return rid


def _dump(runs_dir):
    con = sqlite3.connect(db_path(runs_dir))
    out = {}
    for table in ("runs", "metrics", "arrays", "errors", "probes", "sweeps", "sweep_points"):
        out[table] = sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    con.close()
    return out


def test_merge_copies_runs_with_their_ids_data_and_files_and_is_idempotent(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r1 = _run(a, "one", [0.1, 0.5])
    r2 = _run(a, "two", [0.2])
    r3 = _run(b, "three", [0.3])
    result = merge_stores(a, b)
    assert set(result.added) == {r1, r2} and result.updated == () and result.files == 2
    assert set(load_runs(b)["run_id"]) == {r1, r2, r3}
    dump_a, dump_b = _dump(a), _dump(b)
    for table in ("metrics", "arrays", "errors", "probes"):
        assert set(dump_a[table]) <= set(dump_b[table]), table
    assert set(dump_a["runs"]) <= set(dump_b["runs"])
    assert (b / r1 / "models" / "step_000000000.pt").read_bytes() == b"weights"
    assert load_metrics(b, r1)["value"].tolist() == [0.1, 0.5]

    again = merge_stores(a, b)
    assert again.added == () and again.updated == () and set(again.unchanged) == {r1, r2}
    assert _dump(b) == dump_b


def test_a_newer_copy_of_the_same_run_replaces_the_older(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    rid = _run(a, "one", [0.1], status="interrupted")
    merge_stores(a, b)
    with RunStore(a) as store:  # the run goes on in a
        store.set_status(rid, "running")
        store.log_scalars(rid, 5, "accuracy", {"test_acc": 0.9})
        store.set_status(rid, "finished")
    result = merge_stores(a, b)
    assert result.updated == (rid,)
    assert load_metrics(b, rid)["value"].tolist() == [0.1, 0.9]
    assert load_runs(b).set_index("run_id").loc[rid, "status"] == "finished"
    assert merge_stores(b, a).updated == ()  # the older direction changes nothing


def test_conflicting_ids_are_refused_and_nothing_is_written(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    rid = _run(a, "one", [0.1])
    other = _run(a, "other", [0.4])
    _run(b, "mine", [0.7])
    con = sqlite3.connect(db_path(b))  # another run in b under a's id
    con.execute("UPDATE runs SET id = ? WHERE name = 'mine'", (rid,))
    con.commit()
    con.close()
    before = _dump(b)
    with pytest.raises(SplinescopeError, match=f"refused, nothing written.*run id {rid} is 'one'"):
        merge_stores(a, b)
    assert _dump(b) == before and not (b / other).exists()
    with pytest.raises(SplinescopeError, match="same runs directory"):
        merge_stores(a, a)
    with pytest.raises(SplinescopeError, match="has no run store"):
        merge_stores(tmp_path / "nowhere", b)


def test_sweep_records_merge_and_conflict_on_another_spec(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    points = [PointSpec(f"s/x={i}", i, {"x": i}, {"x": i}) for i in range(2)]
    register_sweep(a, "s", {"grid": {"x": [0, 1]}}, ["x"], points)
    _run(a, "s/x=0", [0.5])
    result = merge_stores(a, b)
    assert result.sweeps_added == ("s",)
    assert load_sweep(b, "s").points["point"].tolist() == ["s/x=0", "s/x=1"]
    assert merge_stores(a, b).sweeps_updated == ()
    c = tmp_path / "c"
    register_sweep(c, "s", {"grid": {"x": [0, 1, 2]}}, ["x"], points)
    with pytest.raises(SplinescopeError, match="sweep 's' has another spec"):
        merge_stores(c, b)
