"""What the CLI's ``export`` command does, as a plain function."""

from __future__ import annotations

from pathlib import Path

from splinescope.errors import SplinescopeError
from splinescope.store.rundata import load_run_data

EXPORT_TARGETS = ("tensorboard", "mlflow")


def export_command(run: str, runs_dir: Path, to: str, dest: str) -> None:
    """Export one stored run: ``to`` "tensorboard" (``dest`` a folder; the run goes in a
    sub-folder "<name>_<id8>") or "mlflow" (``dest`` a "file:" or "sqlite:" tracking URI).

    Raises SplinescopeError for an unknown target, an unknown run, a bad destination, or a
    missing optional extra (with its pip command).
    """
    target = str(to).strip().lower()
    if target not in EXPORT_TARGETS:
        raise SplinescopeError(
            f"to {to!r}: unknown export target; choose one of {list(EXPORT_TARGETS)}"
        )
    if target == "mlflow":
        from splinescope.export.to_mlflow import _check_uri, export_mlflow

        _check_uri(dest)
        export_mlflow(load_run_data(runs_dir, run), dest)
    else:
        from splinescope.export.to_tensorboard import export_tensorboard

        export_tensorboard(load_run_data(runs_dir, run), Path(dest))
