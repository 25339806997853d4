"""RunStore: the writer side of the run store (one per process; several processes at once)."""

from __future__ import annotations

import io
import math
import numbers
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from splinescope.errors import SplinescopeError
from splinescope.store import _db, _integrity, _json
from splinescope.store._liveness import environment, hostname, process_start

STATUSES = ("running", "finished", "crashed", "interrupted", "diverged")
_ABANDONED: list[sqlite3.Connection | None] = []  # connections inherited through fork
_RUN_ID = re.compile(r"^[0-9a-f]{12}$")


def new_run_id(now: float | None = None) -> str:
    """A 12-hex-digit id: 8 digits of epoch seconds (ids sort by creation time to the second)
    followed by 4 random digits."""
    seconds = int(time.time() if now is None else now)
    return f"{seconds & 0xFFFFFFFF:08x}{secrets.token_hex(2)}"


def run_dir(runs_dir: str | os.PathLike[str], run_id: str, *, create: bool = True) -> Path:
    """The folder of a run's files (checkpoints): ``runs_dir/<run_id>/``, created unless
    ``create=False``. ``run_id`` must be a full run id (see ``resolve_run`` for names)."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise SplinescopeError(
            f"run_id must be a full 12-hex-digit run id, got {run_id!r} "
            "(resolve names and prefixes with splinescope.store.resolve_run)"
        )
    path = Path(runs_dir) / run_id
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SplinescopeError(
                f"cannot create run folder {str(path)!r}: {exc.strerror or exc}"
            ) from exc
    return path


def encode_array(array: Any) -> bytes:
    """An array as .npy bytes (dtype, shape and memory order kept; no pickles).

    Accepts numpy arrays, anything ``np.asarray`` takes, and torch tensors (any device).
    """
    if hasattr(array, "detach") and hasattr(array, "cpu"):
        array = array.detach().cpu().numpy()
    arr = np.asarray(array)
    if arr.dtype.hasobject:
        raise SplinescopeError(
            f"array of dtype {arr.dtype} cannot be stored: object arrays need pickling, "
            "which the store refuses; convert to a numeric or string dtype"
        )
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def decode_array(blob: bytes) -> np.ndarray:
    """The array stored by ``encode_array``."""
    return np.load(io.BytesIO(blob), allow_pickle=False)


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise SplinescopeError(f"step must be an integer, got {step!r}")
    return int(step)


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise SplinescopeError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _scalar(value: Any, probe: str, key: str) -> float | None:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, numbers.Real):
        v = float(value)
        return None if math.isnan(v) else v  # SQLite stores NaN as NULL; loaders give NaN
    raise SplinescopeError(
        f"probe {probe!r}, key {key!r}: a scalar must be a real number, got "
        f"{type(value).__name__} {value!r:.60}"
    )


@dataclass(frozen=True)
class _Op:
    """One buffered write: SQL with its parameter rows; ``run_id`` is the run it touches,
    ``must_match`` says that 0 changed rows means an unknown run."""

    sql: str
    rows: Sequence[Sequence[Any]]
    run_id: str
    must_match: bool = False


_INSERT_METRIC = (
    "INSERT INTO metrics (run_id, step, probe, key, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, probe, key, step) DO UPDATE SET value = excluded.value"
)
_INSERT_ARRAY = (
    "INSERT INTO arrays (run_id, step, probe, key, npy) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, probe, key, step) DO UPDATE SET npy = excluded.npy"
)
_INSERT_PROBE = (
    "INSERT INTO probes (run_id, name, spec) VALUES (?, ?, ?) "
    "ON CONFLICT (run_id, name) DO UPDATE SET spec = excluded.spec"
)
_INSERT_ERROR = (
    "INSERT INTO errors (run_id, step, probe, message, traceback, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


class RunStore:
    """Writes runs, metrics, arrays and probe errors to ``runs_dir/splinescope.sqlite``.

    Every call is its own committed transaction, so a process killed at any moment
    (``kill -9`` included) leaves every completed call in the store; ``batch()`` groups many
    calls into one transaction (all or nothing) when per-call commits cost too much. Any
    number of processes may hold a RunStore on the same runs directory: writes queue on
    SQLite's lock for up to ``timeout_s`` seconds.

    Commits survive the death of the process; with ``durable=True`` each commit is also
    fsynced, so that it survives an OS crash or power cut (slower: see the module notes).

    Writing a value again for the same (run, probe, key, step) replaces it (a resumed run
    re-logs steps after its checkpoint). An unwritable ``runs_dir`` raises SplinescopeError
    before anything is created; so does a store of another schema version.

    Usable as a context manager (closes the connection; the runs' statuses are the
    caller's business: see ``set_status``).
    """

    def __init__(
        self,
        runs_dir: str | os.PathLike[str],
        *,
        timeout_s: float = _db.DEFAULT_TIMEOUT_S,
        heartbeat_interval_s: float = 30.0,
        durable: bool = False,
    ) -> None:
        self.runs_dir = _db.ensure_writable_dir(runs_dir)
        self.path = _db.db_path(self.runs_dir)
        self.timeout_s = float(timeout_s)
        self.heartbeat_interval_s = float(heartbeat_interval_s)
        self.durable = bool(durable)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._con: sqlite3.Connection | None = _db.open_for_writing(
            self.runs_dir, self.timeout_s, self.durable
        )
        self._batch_depth = 0
        self._pending: list[_Op] = []
        self._last_beat: dict[str, float] = {}

    # -- connection ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # A forked child must not use its parent's connection (SQLite forbids it);
            # abandon the copy without closing it (closing could disturb the parent's WAL)
            # and keep it referenced so that garbage collection does not close it either.
            _ABANDONED.append(self._con)
            self._con = _db.open_for_writing(self.runs_dir, self.timeout_s, self.durable)
            self._pid = os.getpid()
            self._pending = []
            self._batch_depth = 0
        if self._con is None:
            raise SplinescopeError(f"RunStore on {str(self.runs_dir)!r} is closed")
        return self._con

    def close(self) -> None:
        """Close the connection (pending ``batch()`` writes are discarded if still open)."""
        with self._lock:
            if self._con is not None:
                if self._pid == os.getpid():
                    self._con.close()
                else:
                    _ABANDONED.append(self._con)  # inherited by fork: never close it here
            self._con = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._con is None else "open"
        return f"RunStore({str(self.runs_dir)!r}, {state})"

    # -- transactions -------------------------------------------------------------------

    def _commit(self, ops: Sequence[_Op]) -> None:
        """Run ``ops`` in one write transaction and refresh the touched runs' heartbeat."""
        con = self._connection()
        now = time.time()
        touched = list(dict.fromkeys(op.run_id for op in ops))
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                for op in ops:
                    cur = con.executemany(op.sql, op.rows)
                    if op.must_match and cur.rowcount == 0:
                        raise SplinescopeError(self._unknown(op.run_id))
                con.executemany(
                    "UPDATE runs SET heartbeat = ?, updated_at = ? WHERE id = ?",
                    [(now, now, rid) for rid in touched],
                )
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                known = {r[0] for r in con.execute("SELECT id FROM runs").fetchall()}
                bad = [rid for rid in touched if rid not in known]
                raise SplinescopeError(self._unknown(bad[0] if bad else touched[0])) from exc
            raise SplinescopeError(f"run store {str(self.path)!r} refused a write: {exc}") from exc
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise _integrity.describe(exc, self.path, "write") from exc
            raise SplinescopeError(
                f"run store {str(self.path)!r}: write failed ({exc}); another process may "
                f"have held the lock longer than timeout_s={self.timeout_s}"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise _integrity.describe(exc, self.path, "write") from exc
        for rid in touched:
            self._last_beat[rid] = now

    def _unknown(self, run_id: str) -> str:
        return f"unknown run id {run_id!r} in run store {str(self.path)!r}"

    def _write(self, *ops: _Op) -> None:
        with self._lock:
            self._connection()
            if self._batch_depth:
                self._pending.extend(ops)
            else:
                self._commit(ops)

    @contextmanager
    def batch(self) -> Iterator[RunStore]:
        """Group the writes made inside the block into one transaction.

        Writes are buffered in memory and committed together when the outermost block exits
        (so the lock is held only for the commit, not while the block computes). An
        exception in the block discards them all: a batch is all or nothing, also when the
        process dies. Reads inside the block do not see the buffered writes. Nestable.
        """
        with self._lock:
            self._connection()
            self._batch_depth += 1
        ok = False
        try:
            yield self
            ok = True
        finally:
            with self._lock:
                self._batch_depth -= 1
                if self._batch_depth == 0:
                    pending, self._pending = self._pending, []
                    if ok and pending:
                        self._commit(pending)

    # -- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        name: str | None,
        config: Mapping[str, Any],
        seed: int | None = None,
        *,
        device: str | None = None,
        env: Mapping[str, Any] | None = None,
    ) -> str:
        """Register a new run owned by this process, with status "running"; returns its id.

        ``env`` entries are added to the recorded environment (python, splinescope, torch,
        numpy versions, platform, ``device``, hostname, pid, ``seed``). A ``name`` of None
        names the run by its id. Committed at once, also inside ``batch()``.
        """
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise SplinescopeError(f"seed must be an integer or None, got {seed!r}")
        seed = None if seed is None else int(seed)
        environ = environment(seed, device)
        environ.update(dict(env or {}))
        config_json = _json.dumps(config, "config")
        env_json = _json.dumps(environ, "env")
        now = time.time()
        with self._lock:
            con = self._connection()
            for _ in range(100):
                run_id = new_run_id(now)
                run_name = run_id if name is None else _check_name(name, "name")
                try:
                    con.execute(
                        "INSERT INTO runs (id, name, config, env, status, created_at, "
                        "updated_at, heartbeat, hostname, pid, pid_start, summary) "
                        "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, '{}')",
                        (
                            run_id,
                            run_name,
                            config_json,
                            env_json,
                            now,
                            now,
                            now,
                            hostname(),
                            os.getpid(),
                            process_start(os.getpid()),
                        ),
                    )
                except sqlite3.IntegrityError:
                    continue  # id taken in the same second: draw again
                except sqlite3.DatabaseError as exc:
                    raise _integrity.describe(exc, self.path, "creating a run") from exc
                self._last_beat[run_id] = now
                return run_id
        raise SplinescopeError(f"run store {str(self.path)!r}: no free run id after 100 draws")

    def set_status(self, run_id: str, status: str) -> None:
        """Set a run's status: "running", "finished", "crashed", "interrupted" or "diverged".

        Setting "running" (e.g. to resume a run) makes this process the run's owner: its
        host, pid and heartbeat are recorded, so the run no longer reads as crashed.
        """
        if status not in STATUSES:
            raise SplinescopeError(f"status must be one of {list(STATUSES)}, got {status!r}")
        if status == "running":
            op = _Op(
                "UPDATE runs SET status = 'running', hostname = ?, pid = ?, pid_start = ? "
                "WHERE id = ?",
                [(hostname(), os.getpid(), process_start(os.getpid()), run_id)],
                run_id,
                must_match=True,
            )
        else:
            op = _Op("UPDATE runs SET status = ? WHERE id = ?", [(status, run_id)], run_id, True)
        self._write(op)

    def set_divergence(self, run_id: str, step: int, tensor: str, value: str) -> None:
        """Record that the run diverged at ``step``: ``tensor`` ("loss" or a parameter's
        name) held the non-finite ``value`` ("nan", "inf", "-inf"). The status is set apart
        (``set_status(run_id, "diverged")``), when training ends."""
        text = _json.dumps(
            {"step": _check_step(step), "tensor": str(tensor), "value": str(value)}, "divergence"
        )
        self._write(
            _Op("UPDATE runs SET divergence = ? WHERE id = ?", [(text, run_id)], run_id, True)
        )

    def set_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Replace a run's summary (e.g. its detected phenomena) with ``summary`` (JSON-able)."""
        text = _json.dumps(summary, "summary")
        self._write(_Op("UPDATE runs SET summary = ? WHERE id = ?", [(text, run_id)], run_id, True))

    def heartbeat(self, run_id: str, *, force: bool = False) -> bool:
        """Record that the run's process is alive; cheap to call every training step.

        Writes at most once per ``heartbeat_interval_s`` (unless ``force``); every log call
        beats too. Returns whether it wrote. The heartbeat matters for runs written from
        another host into a shared runs directory, which read as crashed once it is stale.
        """
        last = self._last_beat.get(run_id, -math.inf)
        if not force and time.time() - last < self.heartbeat_interval_s:
            return False
        self._write(_Op("UPDATE runs SET status = status WHERE id = ?", [(run_id,)], run_id, True))
        return True

    def set_probes(self, run_id: str, specs: Mapping[str, Mapping[str, Any]]) -> None:
        """Record the run's probes: ``{probe name: spec}`` (JSON-able: kind, schedule,
        config, declared outputs), replacing earlier specs of the same names."""
        rows = [
            (run_id, _check_name(name, "probe"), _json.dumps(spec, f"probe {name!r} spec"))
            for name, spec in specs.items()
        ]
        if rows:
            self._write(_Op(_INSERT_PROBE, rows, run_id))

    # -- data ---------------------------------------------------------------------------

    def log_scalars(self, run_id: str, step: int, probe: str, values: Mapping[str, Any]) -> None:
        """Store scalars ``{key: value}`` of ``probe`` at ``step`` (one committed transaction).

        Values are real numbers (Python, numpy or 0-d tensors); NaN is stored and read back
        as NaN.
        """
        step = _check_step(step)
        probe = _check_name(probe, "probe")
        if not isinstance(values, Mapping):
            raise SplinescopeError(
                f"probe {probe!r}: values must be a dict of key -> number, got "
                f"{type(values).__name__}"
            )
        rows = [
            (run_id, step, probe, _check_name(k, f"probe {probe!r} key"), _scalar(v, probe, k))
            for k, v in values.items()
        ]
        if rows:
            self._write(_Op(_INSERT_METRIC, rows, run_id))

    def log_array(self, run_id: str, step: int, probe: str, key: str, array: Any) -> None:
        """Store one array (numpy or torch, any dtype but object) under (probe, key, step)."""
        step = _check_step(step)
        probe = _check_name(probe, "probe")
        key = _check_name(key, f"probe {probe!r} key")
        blob = encode_array(array)
        self._write(_Op(_INSERT_ARRAY, [(run_id, step, probe, key, blob)], run_id))

    def log_error(
        self, run_id: str, step: int | None, probe: str, message: str, traceback: str
    ) -> None:
        """Record a probe failure at ``step`` (None: outside any step) with its traceback."""
        step = None if step is None else _check_step(step)
        probe = _check_name(probe, "probe")
        row = (run_id, step, probe, str(message), str(traceback), time.time())
        self._write(_Op(_INSERT_ERROR, [row], run_id))
