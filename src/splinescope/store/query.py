"""The reader side of the run store: runs, metrics, arrays and errors as pandas DataFrames.

Readers open the store read-only and never create it; they may run while writers write.
"""

from __future__ import annotations

import difflib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from splinescope.errors import SplinescopeError
from splinescope.store import _db, _integrity, _json
from splinescope.store._liveness import DEFAULT_STALE_AFTER_S, owner_dead
from splinescope.store.runstore import decode_array

RUN_COLUMNS = (
    "run_id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "heartbeat",
    "last_step",
    "config",
    "env",
    "summary",
    "divergence",
)
METRIC_COLUMNS = ("step", "probe", "key", "value")
ARRAY_COLUMNS = ("step", "probe", "key", "array")
ERROR_COLUMNS = ("step", "probe", "message", "traceback", "created_at")


@contextmanager
def _reading(runs_dir: str | os.PathLike[str]) -> Iterator[sqlite3.Connection | None]:
    path = Path(runs_dir)
    if not path.is_dir():
        raise SplinescopeError(
            f"runs_dir {str(path)!r} is not a directory: no run has been stored there"
        )
    con = _db.open_for_reading(path)
    try:
        yield con
    finally:
        if con is not None:
            con.close()


def _query(con: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
    try:
        return con.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        try:
            path = Path(con.execute("PRAGMA database_list").fetchone()[2])
        except sqlite3.Error:
            path = Path("splinescope.sqlite")
        raise _integrity.describe(exc, path, "read") from exc


def _run_rows(
    con: sqlite3.Connection,
    where: str = "",
    params: tuple[Any, ...] = (),
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> list[dict[str, Any]]:
    columns = {row[1] for row in _query(con, "PRAGMA table_info(runs)")}
    divergence = "r.divergence" if "divergence" in columns else "NULL"  # schema version ≥ 4
    rows = _query(
        con,
        "SELECT r.id, r.name, r.status, r.created_at, r.updated_at, r.heartbeat, "
        "(SELECT max(m.step) FROM metrics m WHERE m.run_id = r.id), r.config, r.env, "
        f"r.summary, {divergence}, r.hostname, r.pid, r.pid_start FROM runs r "
        f"{where} ORDER BY r.created_at, r.id",
        params,
    )
    now = time.time()
    out = []
    for row in rows:
        rid, name, status, created, updated, beat, last, config, env, summary, div = row[:11]
        host, pid, pid_start = row[11:]
        if status == "running" and owner_dead(host, pid, pid_start, beat, now, stale_after_s):
            status = "crashed"
        out.append(
            dict(
                zip(
                    RUN_COLUMNS,
                    (
                        rid,
                        name,
                        status,
                        created,
                        updated,
                        beat,
                        last,
                        _json.loads(config),
                        _json.loads(env),
                        _json.loads(summary),
                        _json.loads(div) if div is not None else None,
                    ),
                    strict=True,
                )
            )
        )
    return out


def load_runs(
    runs_dir: str | os.PathLike[str], *, stale_after_s: float = DEFAULT_STALE_AFTER_S
) -> pd.DataFrame:
    """All runs of ``runs_dir``, oldest first, one row each.

    Columns: run_id, name, status, created_at, updated_at, heartbeat (epoch seconds, UTC),
    last_step (largest step with a scalar; NA if none), config, env, summary (dicts),
    divergence (``{"step", "tensor", "value"}`` of a run that diverged, else None).

    ``status`` is the stored one, except that a "running" run whose process is gone reads
    as "crashed": on this host, its pid is dead or reused; for a run from another host (a
    shared runs directory), its heartbeat is older than ``stale_after_s`` seconds.
    An existing directory without a store gives an empty frame with these columns.
    """
    with _reading(runs_dir) as con:
        rows = [] if con is None else _run_rows(con, stale_after_s=stale_after_s)
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    frame["last_step"] = frame["last_step"].astype("Int64")
    for col in ("created_at", "updated_at", "heartbeat"):
        frame[col] = frame[col].astype("float64")
    return frame


def _resolve(con: sqlite3.Connection | None, runs_dir: str | os.PathLike[str], run: str) -> str:
    if not isinstance(run, str) or not run:
        raise SplinescopeError(f"run must be a run id, id prefix or name, got {run!r}")
    rows = [] if con is None else _query(con, "SELECT id, name FROM runs ORDER BY created_at, id")
    if not rows:
        raise SplinescopeError(f"no run {run!r}: the run store in {str(runs_dir)!r} has no runs")
    ids = [r[0] for r in rows]
    if run in ids:
        return run
    named = [r[0] for r in rows if r[1] == run]
    if named:
        return named[-1]  # the most recent run of that name
    prefixed = [i for i in ids if i.startswith(run)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise SplinescopeError(
            f"run id prefix {run!r} is ambiguous in {str(runs_dir)!r}: it matches "
            f"{', '.join(prefixed[:10])}{' ...' if len(prefixed) > 10 else ''}; give more digits"
        )
    names = list(dict.fromkeys(r[1] for r in rows))
    close = difflib.get_close_matches(run, names + ids, n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise SplinescopeError(
        f"no run {run!r} in {str(runs_dir)!r} (not an id, a unique id prefix or a name){hint}"
    )


def resolve_run(runs_dir: str | os.PathLike[str], run: str) -> str:
    """The id of ``run``: a full run id, a run name (the most recent run of that name) or a
    unique id prefix, tried in that order. Unknown or ambiguous: SplinescopeError listing
    close matches or the matching ids."""
    with _reading(runs_dir) as con:
        return _resolve(con, runs_dir, run)


def get_run(
    runs_dir: str | os.PathLike[str], run: str, *, stale_after_s: float = DEFAULT_STALE_AFTER_S
) -> dict[str, Any]:
    """One run as a dict with the keys of ``load_runs``' columns (``run`` as in resolve_run)."""
    with _reading(runs_dir) as con:
        run_id = _resolve(con, runs_dir, run)
        assert con is not None  # _resolve raised otherwise
        (row,) = _run_rows(con, "WHERE r.id = ?", (run_id,), stale_after_s)
    return row


def _filters(run_id: str, probe: str | None, key: str | None) -> tuple[str, tuple[Any, ...]]:
    where, params = ["run_id = ?"], [run_id]
    for col, val in (("probe", probe), ("key", key)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    return " AND ".join(where), tuple(params)


def load_metrics(
    runs_dir: str | os.PathLike[str], run: str, probe: str | None = None, key: str | None = None
) -> pd.DataFrame:
    """Scalars of one run (``run`` as in resolve_run), optionally of one probe and key.

    Columns step (int64), probe, key, value (float64; NaN where NaN was logged), ordered by
    step and, within a step, in logging order.
    """
    with _reading(runs_dir) as con:
        run_id = _resolve(con, runs_dir, run)
        where, params = _filters(run_id, probe, key)
        rows = _query(
            con,
            f"SELECT step, probe, key, value FROM metrics WHERE {where} ORDER BY step, rowid",
            params,
        )
    frame = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    frame["step"] = frame["step"].astype("int64")
    frame["value"] = frame["value"].astype("float64")
    return frame


def load_arrays(
    runs_dir: str | os.PathLike[str], run: str, probe: str | None = None, key: str | None = None
) -> pd.DataFrame:
    """Arrays of one run, optionally of one probe and key: columns step (int64), probe, key,
    array (np.ndarray with the logged dtype and shape), ordered by step then logging order."""
    with _reading(runs_dir) as con:
        run_id = _resolve(con, runs_dir, run)
        where, params = _filters(run_id, probe, key)
        rows = _query(
            con,
            f"SELECT step, probe, key, npy FROM arrays WHERE {where} ORDER BY step, rowid",
            params,
        )
    arrays: list[np.ndarray] = [decode_array(r[3]) for r in rows]
    frame = pd.DataFrame(
        {
            "step": pd.array([r[0] for r in rows], dtype="int64"),
            "probe": [r[1] for r in rows],
            "key": [r[2] for r in rows],
            "array": pd.Series(arrays, dtype=object),
        }
    )
    return frame


def load_probes(runs_dir: str | os.PathLike[str], run: str) -> dict[str, dict[str, Any]]:
    """The probes a run declared: ``{probe name: spec}`` with the spec's ``kind``,
    ``schedule``, ``config`` and declared ``outputs`` (see
    :func:`splinescope.monitor.registry.probe_spec`), in recording order. A store written
    before probes were recorded (schema 1) has none: ``{}``."""
    with _reading(runs_dir) as con:
        run_id = _resolve(con, runs_dir, run)
        assert con is not None
        has_table = _query(
            con, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'probes'"
        )
        if not has_table:
            return {}
        rows = _query(
            con, "SELECT name, spec FROM probes WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
    return {name: _json.loads(spec) for name, spec in rows}


def array_keys(runs_dir: str | os.PathLike[str], run: str) -> list[tuple[str, str]]:
    """The (probe, key) pairs under which one run stored arrays, in first-logged order."""
    with _reading(runs_dir) as con:
        run_id = _resolve(con, runs_dir, run)
        rows = _query(
            con,
            "SELECT probe, key FROM arrays WHERE run_id = ? GROUP BY probe, key ORDER BY min(rowid)",
            (run_id,),
        )
    return [(p, k) for p, k in rows]


def load_errors(
    runs_dir: str | os.PathLike[str], run: str, probe: str | None = None
) -> pd.DataFrame:
    """Probe failures of one run: columns step (Int64, NA for failures outside a step),
    probe, message, traceback, created_at (epoch seconds), in recording order."""
    with _reading(runs_dir) as con:
        run_id = _resolve(con, runs_dir, run)
        where, params = _filters(run_id, probe, None)
        rows = _query(
            con,
            "SELECT step, probe, message, traceback, created_at FROM errors "
            f"WHERE {where} ORDER BY rowid",
            params,
        )
    frame = pd.DataFrame(rows, columns=list(ERROR_COLUMNS))
    frame["step"] = frame["step"].astype("Int64")
    frame["created_at"] = frame["created_at"].astype("float64")
    return frame
