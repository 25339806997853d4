"""The one error family of splinescope: every message names the argument, module or field."""

from __future__ import annotations


class SplinescopeError(ValueError):
    """Raised for bad input; the message names the offending argument, module or config field."""


class NoPartitionUnitsError(SplinescopeError):
    """The model has no units that define an input-space partition (no ReLU-family, no max-pool)."""
