"""The run store: runs, scalar metrics, arrays and probe errors in one SQLite file per runs
directory (``runs_dir/splinescope.sqlite``, WAL mode), written crash-safely by any number of
processes and read back as pandas DataFrames.

>>> store = RunStore(runs_dir)                       # doctest: +SKIP
>>> run_id = store.create_run("demo", {"lr": 1e-3}, seed=0)
>>> store.log_scalars(run_id, 10, "accuracy", {"train_acc": 0.5})
>>> store.set_status(run_id, "finished")
>>> load_metrics(runs_dir, "demo", probe="accuracy")
"""

from splinescope.store._db import DB_FILENAME, SCHEMA_VERSION, db_path
from splinescope.store.query import (
    get_run,
    load_arrays,
    load_errors,
    load_metrics,
    load_runs,
    resolve_run,
)
from splinescope.store.runstore import STATUSES, RunStore, run_dir

__all__ = [
    "DB_FILENAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "RunStore",
    "db_path",
    "get_run",
    "load_arrays",
    "load_errors",
    "load_metrics",
    "load_runs",
    "resolve_run",
    "run_dir",
]
