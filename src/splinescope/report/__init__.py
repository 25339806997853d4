"""The HTML report of one run or several.

``report_command`` is what the CLI calls; ``write_report`` renders RunData snapshots
(``splinescope.store.load_run_data`` reads one from the store) into one self-contained file,
its figures built from what each probe declared in the registry.
"""

from splinescope.report.commands import report_command
from splinescope.report.html import render_report, write_report
from splinescope.store.rundata import RunData, load_run_data

__all__ = [
    "RunData",
    "load_run_data",
    "render_report",
    "report_command",
    "write_report",
]
