"""Analysis of stored runs: phenomena detected on the curves, with the rule for each."""

from splinescope.analysis.phenomena import NOT_REACHED, UNDEFINED, detect_phenomena, detect_run

__all__ = ["NOT_REACHED", "UNDEFINED", "detect_phenomena", "detect_run"]
