"""The HTML report of one run or several, and the report/export commands.

``report_command`` / ``export_command`` are what the CLI calls; ``write_report`` renders
RunData snapshots (``load_run_data`` reads one from the store) into one self-contained file.
"""

from splinescope.report.commands import export_command, report_command
from splinescope.report.html import render_report, write_report
from splinescope.report.rundata import RunData, load_run_data

__all__ = [
    "RunData",
    "export_command",
    "load_run_data",
    "render_report",
    "report_command",
    "write_report",
]
