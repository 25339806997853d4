"""Bring the runs (and sweep records) of one runs directory into another, ids kept.

    merge_stores("elsewhere/runs", "runs")      # splinescope merge elsewhere/runs runs

Rules, per run id of SRC:

* absent from DEST: copied -- its row, metrics, arrays, errors, probe specs and its files
  (``SRC/<id>/``: checkpoint, snapshots);
* present with the same identity (name, creation time, config): copied over DEST's copy
  when SRC's is newer (a larger ``updated_at``: e.g. a run resumed and finished elsewhere),
  else left alone -- so merging twice changes nothing;
* present with another identity: a *conflict*. Merge refuses before writing anything and
  names every conflicting id.

Sweep records go the same way: a sweep absent from DEST is copied; one present with the
same spec gains SRC's points and the finished state of points DEST has not finished; a
different spec, or a point with a different config, is a conflict. Claims are not copied.
All database writes are one transaction; files are copied first (a crash leaves at most
unreferenced files, which the next merge overwrites).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from splinescope.errors import SplinescopeError
from splinescope.store import _db
from splinescope.store.query import resolve_run

_RUN_COLS = (
    "id, name, config, env, status, created_at, updated_at, heartbeat, hostname, pid, "
    "pid_start, summary"
)
_CHILD_TABLES = ("metrics", "arrays", "errors", "probes")  # every column of SRC's is copied
_POINT_COLS = "sweep, point, idx, coords, config, state, run_id, attempts"
_ATTEMPT_COLS = "sweep, point, run_id, outcome, message, traceback, host, started_at, ended_at"


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: run ids ``added``, ``updated`` (DEST's copy replaced by SRC's newer
    one) and ``unchanged``; sweeps ``sweeps_added`` / ``sweeps_updated``; ``files`` copied."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    sweeps_added: tuple[str, ...] = ()
    sweeps_updated: tuple[str, ...] = ()
    files: int = 0


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def _run_cols(src: sqlite3.Connection) -> str:
    """The runs columns to copy: the first version's, in that order (``_identity`` reads
    them by position), then every later one SRC has (DEST, opened for writing, has all)."""
    first = [c.strip() for c in _RUN_COLS.split(",")]
    return ", ".join(first + [c for c in _columns(src, "runs") if c not in first])


def _identity(row: Sequence) -> tuple:
    """name, created_at and config (canonical JSON) of a runs row in _RUN_COLS order."""
    return row[1], row[5], json.dumps(json.loads(row[2]), sort_keys=True)


def _copy_files(src: Path, dest: Path, run_id: str) -> int:
    folder = src / run_id
    if not folder.is_dir():
        return 0
    n = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.endswith(".tmp"):
            target = dest / run_id / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".merge-tmp")
            shutil.copy2(path, tmp)
            os.replace(tmp, target)
            n += 1
    return n


def _plan_runs(
    src: sqlite3.Connection, dest: sqlite3.Connection, ids: Sequence[str] | None
) -> tuple[list[tuple], list[tuple], list[str], list[str]]:
    """(rows to add, rows to update, unchanged ids, conflict descriptions)."""
    cols = _run_cols(src)
    where = "" if ids is None else f" WHERE id IN ({','.join('?' * len(ids))})"
    rows = src.execute(f"SELECT {cols} FROM runs{where} ORDER BY created_at, id", tuple(ids or ()))
    add, update, same, conflicts = [], [], [], []
    for row in rows.fetchall():
        mine = dest.execute(f"SELECT {cols} FROM runs WHERE id = ?", (row[0],)).fetchone()
        if mine is None:
            add.append(row)
        elif _identity(mine) != _identity(row):
            conflicts.append(
                f"run id {row[0]} is {row[1]!r} in SRC but {mine[1]!r} in DEST (another run)"
                if mine[1] != row[1]
                else f"run id {row[0]} ({row[1]!r}) has another creation time or config in DEST"
            )
        elif row[6] > mine[6]:
            update.append(row)
        else:
            same.append(row[0])
    return add, update, same, conflicts


def _plan_sweeps(
    src: sqlite3.Connection, dest: sqlite3.Connection
) -> tuple[list[str], list[str], list[str]]:
    """(sweeps to add, sweeps to update, conflict descriptions)."""
    if "sweeps" not in _tables(src):
        return [], [], []
    add, update, conflicts = [], [], []
    for name, spec in src.execute("SELECT name, spec FROM sweeps ORDER BY created_at").fetchall():
        mine = dest.execute("SELECT spec FROM sweeps WHERE name = ?", (name,)).fetchone()
        if mine is None:
            add.append(name)
            continue
        if json.loads(mine[0]) != json.loads(spec):
            conflicts.append(f"sweep {name!r} has another spec in DEST")
            continue
        for point, config in src.execute(
            "SELECT point, config FROM sweep_points WHERE sweep = ?", (name,)
        ).fetchall():
            other = dest.execute(
                "SELECT config FROM sweep_points WHERE sweep = ? AND point = ?", (name, point)
            ).fetchone()
            if other is not None and json.loads(other[0]) != json.loads(config):
                conflicts.append(f"sweep {name!r} point {point!r} has another config in DEST")
        update.append(name)
    return add, update, conflicts


def _copy_run(src: sqlite3.Connection, dest: sqlite3.Connection, row: tuple, tables: set) -> None:
    dest.execute("DELETE FROM runs WHERE id = ?", (row[0],))  # cascades to its data
    run_cols = _run_cols(src)
    dest.execute(f"INSERT INTO runs ({run_cols}) VALUES ({','.join('?' * len(row))})", row)
    for table in _CHILD_TABLES:
        if table not in tables:
            continue
        cols = ", ".join(_columns(src, table))
        data = src.execute(
            f"SELECT {cols} FROM {table} WHERE run_id = ? ORDER BY rowid", (row[0],)
        ).fetchall()
        marks = ",".join("?" * (cols.count(",") + 1))
        dest.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", data)


def _merge_sweep(src: sqlite3.Connection, dest: sqlite3.Connection, name: str, new: bool) -> bool:
    """Copy or update one sweep record; True if DEST changed."""
    changed = False
    if new:
        row = src.execute(
            "SELECT name, spec, axes, created_at, updated_at FROM sweeps WHERE name = ?", (name,)
        ).fetchone()
        dest.execute("INSERT INTO sweeps VALUES (?, ?, ?, ?, ?)", row)
        changed = True
    marks = ",".join("?" * 8)
    for point in src.execute(
        f"SELECT {_POINT_COLS} FROM sweep_points WHERE sweep = ? ORDER BY idx", (name,)
    ).fetchall():
        mine = dest.execute(
            "SELECT state FROM sweep_points WHERE sweep = ? AND point = ?", (name, point[1])
        ).fetchone()
        if mine is None:
            dest.execute(f"INSERT INTO sweep_points ({_POINT_COLS}) VALUES ({marks})", point)
            changed = True
        elif mine[0] != "finished" and point[5] == "finished":
            dest.execute(
                "UPDATE sweep_points SET state = 'finished', run_id = ?, attempts = ? "
                "WHERE sweep = ? AND point = ?",
                (point[6], point[7], name, point[1]),
            )
            changed = True
    for attempt in src.execute(
        f"SELECT {_ATTEMPT_COLS} FROM sweep_attempts WHERE sweep = ? ORDER BY rowid", (name,)
    ).fetchall():
        seen = dest.execute(
            "SELECT 1 FROM sweep_attempts WHERE sweep = ? AND point = ? AND run_id IS ? AND "
            "outcome = ? AND started_at = ?",
            (name, attempt[1], attempt[2], attempt[3], attempt[7]),
        ).fetchone()
        if seen is None:
            dest.execute(
                f"INSERT INTO sweep_attempts ({_ATTEMPT_COLS}) VALUES ({','.join('?' * 9)})",
                attempt,
            )
            changed = True
    return changed


def merge_stores(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    runs: Sequence[str] | None = None,
    sweeps: bool = True,
) -> MergeResult:
    """Merge the store of runs directory ``src`` into ``dest`` (created if absent); see the
    module docstring for the rules. ``runs`` limits the merge to those runs (ids, prefixes
    or names) and, with ``sweeps=False``, sweep records are left out.

    Raises SplinescopeError for a SRC without a store, SRC equal to DEST, or conflicts
    (listed; nothing is written then).
    """
    src, dest = Path(src), Path(dest)
    if not _db.db_path(src).is_file():
        raise SplinescopeError(f"SRC {str(src)!r} has no run store ({_db.DB_FILENAME})")
    if dest.exists() and src.resolve() == dest.resolve():
        raise SplinescopeError(f"SRC and DEST are the same runs directory {str(src)!r}")
    ids = None if runs is None else [resolve_run(src, r) for r in runs]
    src_con = _db.open_for_reading(src)
    assert src_con is not None
    dest_con = _db.open_for_writing(_db.ensure_writable_dir(dest))
    try:
        src_con.execute("BEGIN")  # one consistent snapshot of SRC
        tables = _tables(src_con)
        dest_con.execute("BEGIN IMMEDIATE")
        try:
            add, update, same, conflicts = _plan_runs(src_con, dest_con, ids)
            s_add, s_update, s_conflicts = (
                _plan_sweeps(src_con, dest_con) if sweeps and ids is None else ([], [], [])
            )
            conflicts += s_conflicts
            if conflicts:
                raise SplinescopeError(
                    f"merge {str(src)!r} -> {str(dest)!r} refused, nothing written: "
                    f"{len(conflicts)} conflict(s): " + "; ".join(conflicts[:10])
                )
            files = sum(_copy_files(src, dest, row[0]) for row in (*add, *update))
            for row in (*add, *update):
                _copy_run(src_con, dest_con, row, tables)
            changed = [n for n in s_add if _merge_sweep(src_con, dest_con, n, True)]
            updated_sweeps = [n for n in s_update if _merge_sweep(src_con, dest_con, n, False)]
            dest_con.execute("COMMIT")
        except BaseException:
            if dest_con.in_transaction:
                dest_con.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise SplinescopeError(f"merge {str(src)!r} -> {str(dest)!r} failed: {exc}") from exc
    finally:
        src_con.close()
        dest_con.close()
    return MergeResult(
        added=tuple(r[0] for r in add),
        updated=tuple(r[0] for r in update),
        unchanged=tuple(same),
        sweeps_added=tuple(changed),
        sweeps_updated=tuple(updated_sweeps),
        files=files,
    )
