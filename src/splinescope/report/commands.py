"""What the CLI's ``report`` command does, as a plain function."""

from __future__ import annotations

from pathlib import Path

from splinescope.errors import SplinescopeError
from splinescope.report.declared import wants_array
from splinescope.report.html import write_report
from splinescope.store.rundata import RunData, load_run_data


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
        data = load_run_data(runs_dir, run, arrays=wants_array)
        loaded.setdefault(data.run_id, data)
    return write_report(list(loaded.values()), output)
