"""What the CLI's ``report`` and ``export`` commands do, as plain functions."""

from __future__ import annotations

from pathlib import Path

from splinescope.errors import SplinescopeError
from splinescope.report.html import write_report
from splinescope.report.rundata import RunData, load_run_data

# The report shows only these probes' arrays (others, like per-point LC counts, are large).
REPORT_ARRAY_PROBES = ("hessian", "partition")
EXPORT_TARGETS = ("tensorboard", "mlflow")


def report_command(runs: list[str], runs_dir: Path, output: Path) -> Path:
    """Write the HTML report of ``runs`` (ids, unique id prefixes or names; one or several)
    from the store at ``runs_dir`` to ``output``; return the written file's absolute path.

    Raises SplinescopeError for no runs, an unknown run (with close matches), or an output
    that is a directory or not writable. A run without metrics, or still running, is
    reported as far as it goes and marked so on the page.
    """
    if not runs:
        raise SplinescopeError("runs: give at least one RUN (a run id, a unique prefix or a name)")
    output = Path(output)
    if output.is_dir():
        raise SplinescopeError(
            f"output {str(output)!r} is a directory; give a file path such as "
            f"{str(output / 'report.html')!r}"
        )
    loaded: dict[str, RunData] = {}
    for run in runs:
        data = load_run_data(runs_dir, run, array_probes=REPORT_ARRAY_PROBES)
        loaded.setdefault(data.run_id, data)
    return write_report(list(loaded.values()), output)


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
