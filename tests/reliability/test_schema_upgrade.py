"""Stores written by earlier versions (schema 1, 2, 3) are read as they are, and upgraded in
place to the current schema (4: the "diverged" status and ``runs.divergence``) by the first
writer, keeping every row; a store left at an old version by a failed upgrade is unchanged."""

from __future__ import annotations

import sqlite3

import pytest

from splinescope.store import RunStore, get_run, load_errors, load_metrics, load_runs
from splinescope.store._db import _SWEEP_SCHEMA, SCHEMA_VERSION, db_path

# The tables of schema version 1 as released (the runs CHECK without "diverged").
V1 = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, config TEXT NOT NULL, env TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'crashed', 'interrupted')),
    created_at REAL NOT NULL, updated_at REAL NOT NULL, heartbeat REAL NOT NULL,
    hostname TEXT NOT NULL, pid INTEGER NOT NULL, pid_start TEXT, summary TEXT NOT NULL);
CREATE INDEX runs_name ON runs (name);
CREATE TABLE metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, step INTEGER NOT NULL,
    probe TEXT NOT NULL, key TEXT NOT NULL, value REAL, UNIQUE (run_id, probe, key, step));
CREATE TABLE arrays (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, step INTEGER NOT NULL,
    probe TEXT NOT NULL, key TEXT NOT NULL, npy BLOB NOT NULL,
    UNIQUE (run_id, probe, key, step));
CREATE TABLE errors (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, step INTEGER,
    probe TEXT NOT NULL, message TEXT NOT NULL, traceback TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE INDEX errors_run ON errors (run_id, step)
"""
V2 = """
CREATE TABLE probes (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, name TEXT NOT NULL,
    spec TEXT NOT NULL, UNIQUE (run_id, name))
"""
RUN = "0000000aabcd"


def _old_store(runs_dir, version: int) -> None:
    runs_dir.mkdir()
    con = sqlite3.connect(db_path(runs_dir), isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    script = V1 + (";" + V2 if version >= 2 else "") + (";" + _SWEEP_SCHEMA if version >= 3 else "")
    for statement in script.split(";"):
        con.execute(statement)
    con.execute(
        "INSERT INTO runs VALUES (?, 'old', '{\"lr\": 0.1}', '{}', 'interrupted', 1, 2, 2, "
        "'elsewhere', 1, NULL, '{\"interpolation_step\": 4}')",
        (RUN,),
    )
    con.executemany(
        "INSERT INTO metrics VALUES (?, ?, 'accuracy', 'train_acc', ?)",
        [(RUN, s, s / 10) for s in range(10)],
    )
    con.execute("INSERT INTO arrays VALUES (?, 3, 'lc', 'map', x'00')", (RUN,))
    con.execute("INSERT INTO errors VALUES (?, 5, 'lc', 'boom', 'tb', 3)", (RUN,))
    con.execute(f"PRAGMA user_version = {version}")
    con.close()


def _version(runs_dir) -> int:
    con = sqlite3.connect(db_path(runs_dir))
    try:
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_old_store_is_read_as_it_is_then_upgraded_by_a_writer(tmp_path, version):
    runs = tmp_path / "runs"
    _old_store(runs, version)
    row = get_run(runs, RUN)  # read as it is
    assert row["status"] == "interrupted" and row["divergence"] is None
    assert _version(runs) == version
    with RunStore(runs) as store:
        assert _version(runs) == SCHEMA_VERSION == 4
        store.set_status(RUN, "diverged")
        store.set_divergence(RUN, 7, "fc1.weight", "nan")
        new = store.create_run("new", {})
        store.log_scalars(new, 0, "accuracy", {"train_acc": 0.5})
    row = get_run(runs, RUN)
    assert row["status"] == "diverged" and row["config"] == {"lr": 0.1}
    assert row["divergence"] == {"step": 7, "tensor": "fc1.weight", "value": "nan"}
    assert row["summary"] == {"interpolation_step": 4}
    assert load_metrics(runs, RUN)["value"].tolist() == [s / 10 for s in range(10)]
    assert len(load_errors(runs, RUN)) == 1 and len(load_runs(runs)) == 2
    con = sqlite3.connect(db_path(runs))
    try:
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"runs", "metrics", "arrays", "errors", "probes", "sweeps"} <= tables
        assert "runs_v4" not in tables
        # references still point at the rebuilt table: deleting a run cascades to its data
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("DELETE FROM runs WHERE id = ?", (RUN,))
        assert con.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (RUN,)).fetchone() == (
            0,
        )
    finally:
        con.close()


def test_an_unknown_status_is_still_refused_after_the_upgrade(tmp_path):
    runs = tmp_path / "runs"
    _old_store(runs, 3)
    RunStore(runs).close()
    con = sqlite3.connect(db_path(runs))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        con.execute("UPDATE runs SET status = 'exploded'")
    con.close()
