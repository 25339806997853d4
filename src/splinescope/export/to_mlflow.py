"""Export one stored run to MLflow tracking (extra: ``splinescope[mlflow]``).

Only local tracking URIs: ``file:<folder>`` (MLflow's file store) or ``sqlite:///<file>``.
Scalars become metrics "<probe>/<key>" (the store's names) at their steps, the flattened
config becomes params, env and summary become tags ("env.<key>", "summary.<key>"), and
every array is an artifact under ``arrays/<probe>/<key>/step_<step>.npy`` (listed in
``arrays/index.json``; stored pictures also as .png). The MLflow run's status follows the
store's: finished -> FINISHED, crashed -> FAILED, interrupted -> KILLED, running stays RUNNING.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from splinescope.errors import SplinescopeError
from splinescope.export._arrays import ArrayFile, write_arrays
from splinescope.export._params import flat_params
from splinescope.store.rundata import RunData

EXTRA_HINT = "pip install 'splinescope[mlflow]'"
DEFAULT_EXPERIMENT = "splinescope"
TAG_RUN_ID = "splinescope.run_id"
_STATUS = {"finished": "FINISHED", "crashed": "FAILED", "interrupted": "KILLED"}
_MAX_PARAM_CHARS = 6000
_MAX_TAG_CHARS = 8000
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}


@dataclass(frozen=True)
class MlflowExport:
    """The MLflow run written: its id, experiment id, and the counts of what it holds."""

    tracking_uri: str
    experiment_id: str
    mlflow_run_id: str
    n_metrics: int
    n_params: int
    arrays: tuple[ArrayFile, ...]


def _check_uri(uri: str) -> None:
    if not isinstance(uri, str) or not (uri.startswith("file:") or uri.startswith("sqlite:")):
        raise SplinescopeError(
            f"dest {uri!r}: MLflow export takes a local tracking URI, 'file:<folder>' or "
            "'sqlite:///<file>.db' (for example file:./mlruns)"
        )


def _sqlite_artifact_root(uri: str) -> str | None:
    """For sqlite:///path.db, a folder beside the database ("<path>-artifacts") as file URI."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///") :]).expanduser()
    return (db.parent.resolve() / f"{db.stem}-artifacts").as_uri()


@contextlib.contextmanager
def _allow_file_store(uri: str) -> Iterator[None]:
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE is set; the user asked
    for a file: URI explicitly, so allow it for the duration of the export."""
    if not uri.startswith("file:") or os.environ.get("MLFLOW_ALLOW_FILE_STORE"):
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def export_mlflow(
    run: RunData, tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT
) -> MlflowExport:
    """Write ``run`` as a new MLflow run in ``experiment`` at ``tracking_uri``; return its ids.

    Raises SplinescopeError if mlflow is not installed, the URI is not a local file: or
    sqlite: URI, or MLflow refuses the data (the message names the offending field).
    """
    _check_uri(tracking_uri)
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as err:
        raise SplinescopeError(
            f"export --to mlflow needs the mlflow package: {EXTRA_HINT}"
        ) from err

    params = [Param(k, str(v)[:_MAX_PARAM_CHARS]) for k, v in flat_params(run.config).items()]
    tags = [
        RunTag(TAG_RUN_ID, run.run_id),
        RunTag("splinescope.name", run.name),
        RunTag("splinescope.status", run.status),
    ]
    for prefix, mapping in (("env", run.env), ("summary", run.summary)):
        for k, v in flat_params(mapping).items():
            tags.append(RunTag(f"{prefix}.{k}", str(v)[:_MAX_TAG_CHARS]))
    ts = 0
    if run.updated_at is not None:
        with contextlib.suppress(TypeError, ValueError):
            ts = int(float(run.updated_at) * 1000)
    metrics = [
        Metric(f"{p}/{k}", float(v), ts, int(s))
        for s, p, k, v in zip(
            run.metrics["step"],
            run.metrics["probe"],
            run.metrics["key"],
            run.metrics["value"],
            strict=True,
        )
    ]
    stage = "connecting"
    try:
        with _allow_file_store(tracking_uri):
            client = MlflowClient(tracking_uri=tracking_uri)
            stage = f"experiment {experiment!r}"
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                exp_id = client.create_experiment(
                    experiment, artifact_location=_sqlite_artifact_root(tracking_uri)
                )
            else:
                exp_id = exp.experiment_id
            stage = "creating the run"
            mrun = client.create_run(exp_id, run_name=run.name)
            rid = mrun.info.run_id
            for kind, items in (("params", params), ("tags", tags), ("metrics", metrics)):
                stage = f"logging {kind}"
                for chunk in _chunks(items, _BATCH[kind]):
                    client.log_batch(rid, **{kind: chunk})
            stage = "logging array artifacts"
            with tempfile.TemporaryDirectory(prefix="splinescope-mlflow-") as tmp:
                files = write_arrays(run, Path(tmp) / "arrays")
                if files:
                    client.log_artifacts(rid, tmp)
            if run.status in _STATUS:
                client.set_terminated(rid, status=_STATUS[run.status])
    except MlflowException as err:
        raise SplinescopeError(
            f"dest {tracking_uri!r}: MLflow refused the export while {stage}: {err.message}"
        ) from err
    except OSError as err:
        raise SplinescopeError(
            f"dest {tracking_uri!r}: cannot write there while {stage}: {err.strerror or err}"
        ) from err
    return MlflowExport(tracking_uri, exp_id, rid, len(metrics), len(params), tuple(files))
