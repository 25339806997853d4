"""The store's SQLite file: where it lives, how it is opened, its schema and schema version.

One file, ``runs_dir/splinescope.sqlite``, in WAL mode: any number of processes read while
one writes, and writers from several processes queue on SQLite's lock (``busy_timeout``)
instead of failing. Every write is a short ``BEGIN IMMEDIATE ... COMMIT``; a committed
transaction survives the death of its process (``kill -9`` included).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from splinescope.errors import SplinescopeError
from splinescope.store import _integrity

DB_FILENAME = "splinescope.sqlite"

#: Bumped on every change of the tables below; stored as ``PRAGMA user_version``.
#: Version 2 added the ``probes`` table (each run's probe kinds, configs, schedules and
#: declared outputs); a version-1 store is upgraded in place when opened for writing and
#: read as it is (with no probe declarations). Version 3 added the sweep tables (``sweeps``,
#: ``sweep_points``, ``sweep_attempts``: a sweep's spec, its points with their coordinates,
#: runs and claims, and every attempt's outcome), upgraded in place the same way. Version 4
#: added the status "diverged" and the column ``runs.divergence`` (JSON: step, tensor, value
#: of a run that met a non-finite loss or parameter); SQLite cannot change a CHECK
#: constraint, so the upgrade rebuilds the ``runs`` table (rows, ids and references kept).
SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)

#: Seconds a connection waits for another process's write lock before giving up.
DEFAULT_TIMEOUT_S = 60.0

#: The runs table of version 4, with the table's name left open (the upgrade builds it under
#: a temporary name). ``_V1_RUN_COLUMNS`` are the columns every version has.
_RUNS_TABLE = """
CREATE TABLE {name} (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,           -- JSON object
    env         TEXT NOT NULL,           -- JSON object: versions, device, hostname, pid, seed
    status      TEXT NOT NULL CHECK (status IN
                    ('running', 'finished', 'crashed', 'interrupted', 'diverged')),
    created_at  REAL NOT NULL,           -- epoch seconds (UTC)
    updated_at  REAL NOT NULL,
    heartbeat   REAL NOT NULL,
    hostname    TEXT NOT NULL,           -- the process that owns a "running" run
    pid         INTEGER NOT NULL,
    pid_start   TEXT,                    -- its start time (Linux /proc), guards against pid reuse
    summary     TEXT NOT NULL,           -- JSON object
    divergence  TEXT                     -- JSON object: step, tensor, value (NULL: none)
)"""
_V1_RUN_COLUMNS = (
    "id, name, config, env, status, created_at, updated_at, heartbeat, hostname, pid, "
    "pid_start, summary"
)

_SCHEMA = (
    _RUNS_TABLE.format(name="runs")
    + """;
CREATE INDEX runs_name ON runs (name);

CREATE TABLE metrics (
    run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    probe   TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   REAL,                        -- NULL stands for NaN (SQLite has no NaN)
    UNIQUE (run_id, probe, key, step)
);

CREATE TABLE arrays (
    run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    probe   TEXT NOT NULL,
    key     TEXT NOT NULL,
    npy     BLOB NOT NULL,               -- the array in .npy format (dtype, shape, order kept)
    UNIQUE (run_id, probe, key, step)
);

CREATE TABLE errors (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step       INTEGER,
    probe      TEXT NOT NULL,
    message    TEXT NOT NULL,
    traceback  TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX errors_run ON errors (run_id, step);
"""
    + """;
CREATE TABLE probes (
    run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,               -- the store's probe name
    spec    TEXT NOT NULL,               -- JSON: kind, schedule, config, declared outputs
    UNIQUE (run_id, name)
)"""
)

#: The sweep tables (version 3). A point's run is not a foreign key: on a cluster the run
#: arrives in the store only when it has finished elsewhere.
_SWEEP_SCHEMA = """
CREATE TABLE sweeps (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,           -- JSON: the sweep's spec as parsed (base, axes, seeds...)
    axes        TEXT NOT NULL,           -- JSON list: the coordinate names, in order
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE TABLE sweep_points (
    sweep       TEXT NOT NULL REFERENCES sweeps (name) ON DELETE CASCADE,
    point       TEXT NOT NULL,           -- the run name, built from the coordinates
    idx         INTEGER NOT NULL,        -- position in the expansion
    coords      TEXT NOT NULL,           -- JSON object: axis -> value
    config      TEXT NOT NULL,           -- JSON object: the run's full config
    state       TEXT NOT NULL CHECK (state IN ('pending', 'finished', 'failed')),
    run_id      TEXT,                    -- the point's current run, once one exists
    attempts    INTEGER NOT NULL DEFAULT 0,   -- failed attempts so far
    claim_host  TEXT,                    -- the sweep process running the point, if any
    claim_pid   INTEGER,
    claim_start TEXT,
    claimed_at  REAL,
    UNIQUE (sweep, point)
);
CREATE TABLE sweep_attempts (
    sweep       TEXT NOT NULL,
    point       TEXT NOT NULL,
    run_id      TEXT,
    outcome     TEXT NOT NULL,           -- finished, failed, interrupted
    message     TEXT NOT NULL,
    traceback   TEXT NOT NULL,
    host        TEXT NOT NULL,
    started_at  REAL NOT NULL,
    ended_at    REAL NOT NULL,
    FOREIGN KEY (sweep, point) REFERENCES sweep_points (sweep, point) ON DELETE CASCADE
);
CREATE INDEX sweep_attempts_point ON sweep_attempts (sweep, point)"""

#: What turns a version-1 store into version 2, and a version-2 store into version 3.
_UPGRADE_1_TO_2 = _SCHEMA.rsplit(";", 1)[1]
_UPGRADE_2_TO_3 = _SWEEP_SCHEMA
_SCHEMA = _SCHEMA + ";" + _SWEEP_SCHEMA
#: Version 3 -> 4: the runs table rebuilt with the new CHECK and column (SQLite's documented
#: procedure: new table, copy, drop, rename; foreign keys off meanwhile, so that dropping the
#: old table cascades to nothing, and checked before the commit).
_UPGRADE_3_TO_4 = (
    _RUNS_TABLE.format(name="runs_v4")
    + f";INSERT INTO runs_v4 ({_V1_RUN_COLUMNS}) SELECT {_V1_RUN_COLUMNS} FROM runs"
    + ";DROP TABLE runs;ALTER TABLE runs_v4 RENAME TO runs"
    + ";CREATE INDEX runs_name ON runs (name)"
)


def db_path(runs_dir: str | os.PathLike[str]) -> Path:
    """The store file of a runs directory: ``runs_dir/splinescope.sqlite``."""
    return Path(runs_dir) / DB_FILENAME


def ensure_writable_dir(runs_dir: str | os.PathLike[str]) -> Path:
    """Create ``runs_dir`` if needed and prove that files can be created in it.

    Raises SplinescopeError naming the directory and the OS's reason otherwise. The check
    creates and removes a temporary file, so it holds for root too (where permission bits
    alone say nothing) and for read-only mounts.
    """
    path = Path(runs_dir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".splinescope-probe-"):
            pass
    except OSError as exc:
        raise SplinescopeError(
            f"runs_dir {str(path)!r} is not a writable directory "
            f"({exc.strerror or type(exc).__name__}); choose another runs directory"
        ) from exc
    return path


def _configure(con: sqlite3.Connection, timeout_s: float) -> None:
    con.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    con.execute("PRAGMA foreign_keys = ON")


def _version_error(path: Path, found: int) -> SplinescopeError:
    return SplinescopeError(
        f"run store {str(path)!r} has schema version {found}, but this splinescope reads "
        f"schema version {SCHEMA_VERSION}; use a splinescope release that matches the store, "
        f"or a new runs directory"
    )


def _check_version(con: sqlite3.Connection, path: Path, readable: tuple[int, ...]) -> None:
    (found,) = con.execute("PRAGMA user_version").fetchone()
    if found not in readable:
        raise _version_error(path, found)


def _upgrade(con: sqlite3.Connection) -> None:
    """Bring a version-1, -2 or -3 store to the current version, one step after the other
    (1 -> 2 adds the probes table, 2 -> 3 the sweep tables, 3 -> 4 rebuilds the runs table),
    in one transaction under the write lock: all steps or none."""
    con.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set before it
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            (found,) = con.execute("PRAGMA user_version").fetchone()
            if found == 1:
                con.execute(_UPGRADE_1_TO_2)
                found = 2
            if found == 2:
                for statement in _UPGRADE_2_TO_3.split(";"):
                    con.execute(statement)
                found = 3
            if found == 3:
                for statement in _UPGRADE_3_TO_4.split(";"):
                    con.execute(statement)
                broken = con.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise SplinescopeError(
                        f"schema upgrade to version 4 would break {len(broken)} reference(s) "
                        f"(first: {broken[0]}); the store is left at version 3"
                    )
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute("PRAGMA foreign_keys = ON")


def open_for_writing(
    runs_dir: Path, timeout_s: float = DEFAULT_TIMEOUT_S, durable: bool = False
) -> sqlite3.Connection:
    """Open (creating if absent) the store of ``runs_dir`` for reading and writing.

    ``durable=True`` sets ``synchronous = FULL``: an fsync per commit, so that commits also
    survive an OS crash or power cut (the default, NORMAL, survives the death of the process).

    The schema is created under the write lock, so processes that open a new runs
    directory at the same moment create it exactly once. A store of another schema version
    raises SplinescopeError naming both versions.
    """
    path = db_path(runs_dir)
    _integrity.check_file(path)
    try:
        con = sqlite3.connect(
            path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise _integrity.describe(exc, path, "open") from exc
    try:
        _configure(con, timeout_s)
        (mode,) = con.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode.lower() != "wal":
            raise SplinescopeError(
                f"run store {str(path)!r} could not be switched to WAL mode (got {mode!r}); "
                "is the runs directory on a network file system?"
            )
        # NORMAL in WAL mode: a commit is durable against the death of the process (the WAL
        # is written before COMMIT returns); only an OS crash or power cut may lose the last
        # commits, and never corrupts the file. FULL adds an fsync per commit.
        con.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        (found,) = con.execute("PRAGMA user_version").fetchone()
        if found == 0:
            con.execute("BEGIN IMMEDIATE")
            try:
                (found,) = con.execute("PRAGMA user_version").fetchone()
                if found == 0:
                    tables = con.execute(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                    ).fetchone()[0]
                    if tables:
                        raise SplinescopeError(
                            f"{str(path)!r} is an SQLite file with tables but no splinescope "
                            "schema version (0); it is not a splinescope run store"
                        )
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            con.execute(statement)
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        if found in (1, 2, 3):
            _upgrade(con)
        _check_version(con, path, (SCHEMA_VERSION,))
        # A writer must not add pages to a damaged file: every page is read once here
        # (about 4 ms per MB).
        (verdict,) = con.execute("PRAGMA quick_check(1)").fetchone()
        if verdict != "ok":
            raise SplinescopeError(
                f"run store {str(path)!r} is corrupt ({verdict}); {_integrity.ADVICE}"
            )
    except sqlite3.Error as exc:
        con.close()
        raise _integrity.describe(exc, path, "open") from exc
    except BaseException:
        con.close()
        raise
    return con


def open_for_reading(
    runs_dir: str | os.PathLike[str], timeout_s: float = DEFAULT_TIMEOUT_S
) -> sqlite3.Connection | None:
    """Open the store of ``runs_dir`` read-only, or return None if there is no store yet.

    Never creates the store. A store of another schema version raises SplinescopeError.
    """
    path = db_path(runs_dir)
    if not path.is_file():
        return None
    _integrity.check_file(path)
    if path.stat().st_size == 0:
        return None  # being created by a writer this moment
    try:
        con = _connect_read_only(path, timeout_s)
    except sqlite3.Error as exc:
        raise _integrity.describe(exc, path, "open") from exc
    try:
        _configure(con, timeout_s)
        (found,) = con.execute("PRAGMA user_version").fetchone()
        if found == 0 and not con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            con.close()
            return None  # a writer is creating the schema this moment
        _check_version(con, path, READABLE_VERSIONS)
    except sqlite3.Error as exc:
        con.close()
        raise _integrity.describe(exc, path, "read") from exc
    except BaseException:
        con.close()
        raise
    return con


def _connect_read_only(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A read-only connection. A WAL-mode file whose folder cannot be written (a read-only
    mount, an archive) has no shared-memory index to open; with no WAL file beside it
    nothing can be pending, and it is opened as immutable."""
    uri = path.resolve().as_uri() + "?mode=ro"
    kwargs = dict(uri=True, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    con = sqlite3.connect(uri, **kwargs)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
        wal = path.with_name(path.name + "-wal")
        if os.access(path.parent, os.W_OK) or wal.exists():
            raise
    return sqlite3.connect(uri + "&immutable=1", **kwargs)
