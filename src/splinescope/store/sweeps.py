"""A sweep's record in the run store: its spec, its points (coordinates, config, current run,
state, failed attempts) and the claim that keeps two sweep processes off the same point.

A point is *claimed* by the sweep process (host, pid, start time) that runs it; a claim held
by a dead process, or by another host for longer than ``stale_after_s`` without a refresh,
is free again. A point whose run is "running" in a live process (a worker that outlived its
sweep) cannot be claimed either. Every state change is one short write transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from splinescope.errors import SplinescopeError
from splinescope.store import _db, _json
from splinescope.store._liveness import (
    DEFAULT_STALE_AFTER_S,
    hostname,
    owner_dead,
    pid_alive,
    process_start,
)

POINT_STATES = ("pending", "finished", "failed")
OUTCOMES = ("finished", "failed", "interrupted")
POINT_COLUMNS = (
    "point",
    "index",
    "coords",
    "config",
    "state",
    "run_id",
    "run_status",
    "attempts",
    "claimed_by",
)


@dataclass(frozen=True)
class PointSpec:
    """One point of a sweep as registered: its run name, position, coordinates and config."""

    name: str
    index: int
    coords: Mapping[str, Any]
    config: Mapping[str, Any]


@dataclass(frozen=True)
class Claim:
    """A point claimed by this process: what the sweep needs to run it.

    ``run_id`` is the point's current run (None: none yet) and ``run_status`` that run's
    status as the store reads it ("crashed" for a "running" run whose process is gone);
    ``attempts`` counts the failed attempts so far.
    """

    point: str
    config: Mapping[str, Any]
    run_id: str | None
    run_status: str | None
    attempts: int


@contextmanager
def _writing(runs_dir: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    con = _db.open_for_writing(_db.ensure_writable_dir(runs_dir))
    try:
        yield con
    finally:
        con.close()


@contextmanager
def _transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json._default)


def _me() -> tuple[str, int, str | None]:
    return hostname(), os.getpid(), process_start(os.getpid())


def register_sweep(
    runs_dir: str | os.PathLike[str],
    name: str,
    spec: Mapping[str, Any],
    axes: Sequence[str],
    points: Sequence[PointSpec],
) -> list[str]:
    """Record sweep ``name`` (spec, axis names, points) or check it against its record.

    A sweep recorded before keeps its points; points new to the spec are added (a grid may
    grow). A point whose config differs from its record, or a recorded point missing from
    the spec, raises SplinescopeError naming it (use a new sweep name). The spec record is
    replaced by ``spec``. Returns the names of the points added.
    """
    if not isinstance(name, str) or not name:
        raise SplinescopeError(f"sweep name must be a non-empty string, got {name!r}")
    spec_json = _json.dumps(spec, "sweep spec")
    now = time.time()
    with _writing(runs_dir) as con, _transaction(con):
        known = {
            p: (c, i)
            for p, c, i in con.execute(
                "SELECT point, config, idx FROM sweep_points WHERE sweep = ?", (name,)
            )
        }
        wanted = {p.name: p for p in points}
        if len(wanted) != len(points):
            dup = [p.name for p in points if sum(q.name == p.name for q in points) > 1][0]
            raise SplinescopeError(f"sweep {name!r}: two points are both named {dup!r}")
        missing = [p for p in known if p not in wanted]
        if missing:
            raise SplinescopeError(
                f"sweep {name!r} is recorded in {str(runs_dir)!r} with point(s) the spec no "
                f"longer has: {', '.join(missing[:5])}; give the changed sweep a new name"
            )
        for point, (config, _) in known.items():
            if _canonical(json.loads(config)) != _canonical(dict(wanted[point].config)):
                old, new = json.loads(config), dict(wanted[point].config)
                fields = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
                raise SplinescopeError(
                    f"sweep {name!r}: point {point!r} is recorded with another config "
                    f"(fields {', '.join(fields)} differ); give the changed sweep a new name"
                )
        con.execute(
            "INSERT INTO sweeps (name, spec, axes, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, axes = excluded.axes, "
            "updated_at = excluded.updated_at",
            (name, spec_json, json.dumps(list(axes)), now, now),
        )
        added = [p for p in points if p.name not in known]
        con.executemany(
            "INSERT INTO sweep_points (sweep, point, idx, coords, config, state) "
            "VALUES (?, ?, ?, ?, ?, 'pending')",
            [
                (
                    name,
                    p.name,
                    p.index,
                    _json.dumps(p.coords, f"point {p.name!r} coordinates"),
                    _json.dumps(p.config, f"point {p.name!r} config"),
                )
                for p in added
            ],
        )
    return [p.name for p in added]


def _run_status(con: sqlite3.Connection, run_id: str | None, stale_after_s: float) -> str | None:
    """The status of ``run_id`` as readers see it; "running" only while its owner lives."""
    if run_id is None:
        return None
    row = con.execute(
        "SELECT status, hostname, pid, pid_start, heartbeat FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    if row is None:
        return None
    status, host, pid, start, beat = row
    if status == "running" and owner_dead(host, pid, start, beat, time.time(), stale_after_s):
        return "crashed"
    return status


def _claim_live(row: Sequence[Any], stale_after_s: float) -> bool:
    """Whether a claim (host, pid, start, claimed_at) is held by a live process."""
    host, pid, start, claimed_at = row
    if pid is None:
        return False
    if host == hostname():
        return pid_alive(pid, start)
    return time.time() - claimed_at <= stale_after_s


def _claim_free(row: Sequence[Any], stale_after_s: float) -> bool:
    """Whether this process may take a point with this claim (none, dead, or its own)."""
    host, pid, start, _ = row
    mine = (host, pid, start) == _me()
    return mine or not _claim_live(row, stale_after_s)


def claim_point(
    runs_dir: str | os.PathLike[str],
    sweep: str,
    point: str,
    *,
    retry_failed: bool = False,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> Claim | str:
    """Claim ``point`` of ``sweep`` for this process, or say why not.

    Returns a :class:`Claim`, or one of "finished" (nothing to do: a point whose run has
    finished is marked finished here), "failed" (attempts used up; ``retry_failed=True``
    resets them) and "busy" (another live sweep process holds it, or its run is running).
    """
    with _writing(runs_dir) as con, _transaction(con):
        row = con.execute(
            "SELECT config, state, run_id, attempts, claim_host, claim_pid, claim_start, "
            "claimed_at FROM sweep_points WHERE sweep = ? AND point = ?",
            (sweep, point),
        ).fetchone()
        if row is None:
            raise SplinescopeError(f"sweep {sweep!r} has no point {point!r}")
        config, state, run_id, attempts = row[:4]
        status = _run_status(con, run_id, stale_after_s)
        if status == "finished" or state == "finished":
            con.execute(
                "UPDATE sweep_points SET state = 'finished', claim_host = NULL, claim_pid = NULL, "
                "claim_start = NULL WHERE sweep = ? AND point = ?",
                (sweep, point),
            )
            return "finished"
        if not _claim_free(row[4:], stale_after_s) or status == "running":
            return "busy"
        if state == "failed":
            if not retry_failed:
                return "failed"
            attempts = 0
        host, pid, start = _me()
        con.execute(
            "UPDATE sweep_points SET state = 'pending', attempts = ?, claim_host = ?, "
            "claim_pid = ?, claim_start = ?, claimed_at = ? WHERE sweep = ? AND point = ?",
            (attempts, host, pid, start, time.time(), sweep, point),
        )
    return Claim(point, json.loads(config), run_id, status, int(attempts))


def set_point_run(runs_dir: str | os.PathLike[str], sweep: str, point: str, run_id: str) -> None:
    """Make ``run_id`` the current run of ``point`` (called as soon as the run exists)."""
    with _writing(runs_dir) as con, _transaction(con):
        con.execute(
            "UPDATE sweep_points SET run_id = ? WHERE sweep = ? AND point = ?",
            (run_id, sweep, point),
        )


def record_attempt(
    runs_dir: str | os.PathLike[str],
    sweep: str,
    point: str,
    *,
    run_id: str | None,
    outcome: str,
    started_at: float,
    max_attempts: int,
    message: str = "",
    traceback: str = "",
) -> str:
    """Record one attempt of ``point`` and release its claim; return the point's new state.

    ``outcome`` "finished" finishes the point; "failed" counts a failed attempt (the point is
    "failed" once ``max_attempts`` are used up, else "pending"); "interrupted" (stopped from
    outside: Ctrl-C, a pool shut down around it) counts nothing and leaves it "pending".
    """
    if outcome not in OUTCOMES:
        raise SplinescopeError(f"outcome must be one of {list(OUTCOMES)}, got {outcome!r}")
    with _writing(runs_dir) as con, _transaction(con):
        (attempts,) = con.execute(
            "SELECT attempts FROM sweep_points WHERE sweep = ? AND point = ?", (sweep, point)
        ).fetchone()
        attempts += outcome == "failed"
        state = {"finished": "finished", "interrupted": "pending"}.get(
            outcome, "failed" if attempts >= max_attempts else "pending"
        )
        con.execute(
            "UPDATE sweep_points SET state = ?, attempts = ?, run_id = coalesce(?, run_id), "
            "claim_host = NULL, claim_pid = NULL, claim_start = NULL "
            "WHERE sweep = ? AND point = ?",
            (state, attempts, run_id, sweep, point),
        )
        con.execute(
            "INSERT INTO sweep_attempts (sweep, point, run_id, outcome, message, traceback, "
            "host, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sweep,
                point,
                run_id,
                outcome,
                message,
                traceback,
                hostname(),
                started_at,
                time.time(),
            ),
        )
    return state


def release_claims(runs_dir: str | os.PathLike[str], sweep: str) -> None:
    """Drop every claim this process holds on ``sweep`` (the points stay as they are)."""
    host, pid, start = _me()
    with _writing(runs_dir) as con, _transaction(con):
        con.execute(
            "UPDATE sweep_points SET claim_host = NULL, claim_pid = NULL, claim_start = NULL "
            "WHERE sweep = ? AND claim_host = ? AND claim_pid = ?",
            (sweep, host, pid),
        )


def refresh_claims(runs_dir: str | os.PathLike[str], sweep: str) -> None:
    """Refresh the time of this process's claims (read from other hosts as a heartbeat)."""
    host, pid, _ = _me()
    with _writing(runs_dir) as con, _transaction(con):
        con.execute(
            "UPDATE sweep_points SET claimed_at = ? WHERE sweep = ? AND claim_host = ? "
            "AND claim_pid = ?",
            (time.time(), sweep, host, pid),
        )


# -- readers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRecord:
    """A stored sweep: name, spec (as parsed), axis names, times and its points.

    ``points`` has one row per point in expansion order, columns ``POINT_COLUMNS``: point
    (the run name), index, coords and config (dicts), state ("pending", "finished",
    "failed"), run_id (None before a run exists), run_status (as ``load_runs`` reads it),
    attempts (failed attempts) and claimed_by ("host:pid" of a live claim, else None).
    ``attempts_log`` has every recorded attempt: point, run_id, outcome, message,
    traceback, host, started_at, ended_at.
    """

    name: str
    spec: Mapping[str, Any]
    axes: tuple[str, ...]
    created_at: float
    updated_at: float
    points: pd.DataFrame
    attempts_log: pd.DataFrame


def _has_sweeps(con: sqlite3.Connection) -> bool:
    return bool(
        con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sweeps'"
        ).fetchall()
    )


def sweep_names(runs_dir: str | os.PathLike[str]) -> list[str]:
    """The names of the sweeps recorded in ``runs_dir``, oldest first ([] without a store)."""
    if not Path(runs_dir).is_dir():
        return []
    con = _db.open_for_reading(runs_dir)
    if con is None:
        return []
    try:
        if not _has_sweeps(con):
            return []
        return [r[0] for r in con.execute("SELECT name FROM sweeps ORDER BY created_at, name")]
    finally:
        con.close()


def load_sweep(
    runs_dir: str | os.PathLike[str], name: str, *, stale_after_s: float = DEFAULT_STALE_AFTER_S
) -> SweepRecord:
    """The record of sweep ``name``; SplinescopeError listing the recorded sweeps if unknown."""
    con = _db.open_for_reading(runs_dir) if Path(runs_dir).is_dir() else None
    if con is None:
        raise SplinescopeError(f"no sweep {name!r}: {str(runs_dir)!r} has no run store")
    try:
        row = (
            con.execute(
                "SELECT spec, axes, created_at, updated_at FROM sweeps WHERE name = ?", (name,)
            ).fetchone()
            if _has_sweeps(con)
            else None
        )
        if row is None:
            known = sweep_names(runs_dir)
            raise SplinescopeError(
                f"no sweep {name!r} in {str(runs_dir)!r}; recorded sweeps: "
                f"{', '.join(known) if known else 'none'}"
            )
        points = []
        for r in con.execute(
            "SELECT point, idx, coords, config, state, run_id, attempts, claim_host, claim_pid, "
            "claim_start, claimed_at FROM sweep_points WHERE sweep = ? ORDER BY idx, point",
            (name,),
        ).fetchall():
            live = _claim_live(r[7:11], stale_after_s)
            points.append(
                (
                    r[0],
                    r[1],
                    json.loads(r[2]),
                    json.loads(r[3]),
                    r[4],
                    r[5],
                    _run_status(con, r[5], stale_after_s),
                    r[6],
                    f"{r[7]}:{r[8]}" if live else None,
                )
            )
        log = con.execute(
            "SELECT point, run_id, outcome, message, traceback, host, started_at, ended_at "
            "FROM sweep_attempts WHERE sweep = ? ORDER BY rowid",
            (name,),
        ).fetchall()
    finally:
        con.close()
    frame = pd.DataFrame(points, columns=list(POINT_COLUMNS))
    for col in ("run_id", "run_status", "claimed_by"):  # None stays None, never NaN
        frame[col] = pd.Series([p[POINT_COLUMNS.index(col)] for p in points], dtype=object)
    return SweepRecord(
        name=name,
        spec=json.loads(row[0]),
        axes=tuple(json.loads(row[1])),
        created_at=row[2],
        updated_at=row[3],
        points=frame,
        attempts_log=pd.DataFrame(
            log,
            columns=[
                "point",
                "run_id",
                "outcome",
                "message",
                "traceback",
                "host",
                "started_at",
                "ended_at",
            ],
        ),
    )
