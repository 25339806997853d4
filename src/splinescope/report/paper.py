"""Figure builders of the boundary-LC and migration probes (filled in below)."""

from __future__ import annotations

from collections.abc import Sequence

from splinescope.store.rundata import RunData


def boundary_lc_figures(runs: Sequence[RunData], probe: str) -> list:
    return []


def migration_figures(runs: Sequence[RunData], probe: str) -> list:
    return []
