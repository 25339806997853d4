"""Live sinks: scalars streamed to TensorBoard, MLflow or a trainer's loggers while a run goes.

A sink receives what the Monitor stores, as it stores it::

    sinks = [TensorBoardSink("tb"), MlflowSink("file:./mlruns")]
    Monitor(model, probes, "runs", schedule, context=ctx, sinks=sinks)

The protocol (:class:`Sink`) is three calls: ``open(run_id, name, config)`` once when the
Monitor has its run, ``log_scalars(step, probe, scalars)`` after every probe that produced
scalars, ``close(status)`` once at the end. Tags are the exporters' ("<probe>/<key>", the
store's names; ``prefix`` prepended), so a streamed run and an exported one read the same.
A failing sink never kills training: the Monitor records its error under the probe name
``sink:<name>`` and goes on (unless strict).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from splinescope.errors import SplinescopeError
from splinescope.export._arrays import safe_part
from splinescope.export._params import flat_params


@runtime_checkable
class Sink(Protocol):
    """Where the Monitor streams scalars besides the store."""

    name: str

    def open(self, run_id: str, name: str, config: Mapping[str, Any]) -> None: ...

    def log_scalars(self, step: int, probe: str, scalars: Mapping[str, float]) -> None: ...

    def close(self, status: str) -> None: ...


def _tag(prefix: str, probe: str, key: str) -> str:
    return f"{prefix}{probe}/{key}"


class TensorBoardSink:
    """Scalars as TensorBoard events in ``logdir/<name>_<id8>/`` (the exporter's folder), the
    config as text; flushed after every probe step. Extra: ``splinescope[tensorboard]``."""

    name = "tensorboard"

    def __init__(self, logdir: str | os.PathLike[str], *, prefix: str = "") -> None:
        self.logdir = Path(logdir).expanduser()
        self.prefix = prefix
        self.writer: Any = None
        self.folder: Path | None = None

    def open(self, run_id: str, name: str, config: Mapping[str, Any]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise SplinescopeError(
                "TensorBoardSink needs the tensorboard package: pip install "
                "'splinescope[tensorboard]'"
            ) from err
        self.folder = self.logdir / f"{safe_part(name)}_{safe_part(run_id[:8])}"
        self.writer = SummaryWriter(log_dir=str(self.folder))
        params = flat_params(config)
        if params:
            text = "\n".join(f"{k} = {v}" for k, v in params.items())
            self.writer.add_text("splinescope/config", f"```\n{text}\n```")

    def log_scalars(self, step: int, probe: str, scalars: Mapping[str, float]) -> None:
        if self.writer is None:
            raise SplinescopeError("TensorBoardSink: log_scalars before open")
        for key, value in scalars.items():
            self.writer.add_scalar(_tag(self.prefix, probe, key), float(value), global_step=step)
        self.writer.flush()

    def close(self, status: str) -> None:
        if self.writer is not None:
            self.writer.add_text("splinescope/status", status)
            self.writer.close()
            self.writer = None


_MLFLOW_STATUS = {"finished": "FINISHED", "crashed": "FAILED", "interrupted": "KILLED"}


class MlflowSink:
    """Scalars as MLflow metrics of one MLflow run (params: the flattened config; tag
    ``splinescope.run_id``), logged at each probe step; the run ends with the store's status.
    Only local tracking URIs (``file:<folder>``, ``sqlite:///<file>``), as the exporter.
    Extra: ``splinescope[mlflow]``."""

    name = "mlflow"

    def __init__(
        self, tracking_uri: str, *, experiment: str = "splinescope", prefix: str = ""
    ) -> None:
        from splinescope.export.to_mlflow import _check_uri

        _check_uri(tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.prefix = prefix
        self.client: Any = None
        self.mlflow_run_id: str | None = None

    def open(self, run_id: str, name: str, config: Mapping[str, Any]) -> None:
        from splinescope.export.to_mlflow import _allow_file_store, _sqlite_artifact_root

        try:
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise SplinescopeError(
                "MlflowSink needs the mlflow package: pip install 'splinescope[mlflow]'"
            ) from err
        with _allow_file_store(self.tracking_uri):
            self.client = MlflowClient(tracking_uri=self.tracking_uri)
            exp = self.client.get_experiment_by_name(self.experiment)
            exp_id = (
                exp.experiment_id
                if exp is not None
                else self.client.create_experiment(
                    self.experiment, artifact_location=_sqlite_artifact_root(self.tracking_uri)
                )
            )
            run = self.client.create_run(exp_id, run_name=name, tags={"splinescope.run_id": run_id})
            self.mlflow_run_id = run.info.run_id
            params = [Param(k, str(v)[:6000]) for k, v in flat_params(config).items()]
            for i in range(0, len(params), 100):
                self.client.log_batch(self.mlflow_run_id, params=params[i : i + 100])

    def log_scalars(self, step: int, probe: str, scalars: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        from splinescope.export.to_mlflow import _allow_file_store

        if self.client is None or self.mlflow_run_id is None:
            raise SplinescopeError("MlflowSink: log_scalars before open")
        import time

        now = int(time.time() * 1000)
        metrics = [
            Metric(_tag(self.prefix, probe, k), float(v), now, int(step))
            for k, v in scalars.items()
        ]
        with _allow_file_store(self.tracking_uri):
            for i in range(0, len(metrics), 1000):
                self.client.log_batch(self.mlflow_run_id, metrics=metrics[i : i + 1000])

    def close(self, status: str) -> None:
        from splinescope.export.to_mlflow import _allow_file_store

        if self.client is not None and self.mlflow_run_id is not None:
            with _allow_file_store(self.tracking_uri):
                self.client.set_terminated(
                    self.mlflow_run_id, status=_MLFLOW_STATUS.get(status, "FINISHED")
                )
            self.client = None


class CallbackSink:
    """Scalars handed to ``log(metrics, step)`` as ``{"<prefix><probe>/<key>": value}`` (a
    trainer's loggers, W&B's ``wandb.log`` wrapped, a print)."""

    def __init__(
        self,
        log: Callable[[dict[str, float], int], None],
        *,
        prefix: str = "splinescope/",
        name: str = "callback",
    ) -> None:
        if not callable(log):
            raise SplinescopeError(f"log: expected a callable log(metrics, step), got {log!r}")
        self.log = log
        self.prefix = prefix
        self.name = name

    def open(self, run_id: str, name: str, config: Mapping[str, Any]) -> None:
        return None

    def log_scalars(self, step: int, probe: str, scalars: Mapping[str, float]) -> None:
        self.log({_tag(self.prefix, probe, k): float(v) for k, v in scalars.items()}, int(step))

    def close(self, status: str) -> None:
        return None
