"""Sweeps: a grid of runs from one spec, on a local process pool or on Ray, into one store.

>>> from splinescope.sweep import load_spec, expand, run_sweep     # doctest: +SKIP
>>> spec = load_spec("omnigrok-digits")          # a shipped spec, or a SPEC.toml path
>>> [p.name for p in expand(spec)][:2]
['omnigrok-digits/init_scale=1,weight_decay=0', 'omnigrok-digits/init_scale=1,weight_decay=0.01']
>>> run_sweep(spec, "runs", backend="pool", jobs=2).counts
{'finished': 16}

The sweep's record (spec, points, coordinates, attempts) is in the store:
:func:`splinescope.store.sweeps.load_sweep`; ``splinescope report SWEEP`` draws its phase
charts.
"""

from splinescope.sweep.run import BACKENDS, SweepEvent, SweepResult, make_executor, run_sweep
from splinescope.sweep.spec import (
    Point,
    SweepSpec,
    dry_run_rows,
    expand,
    format_value,
    load_spec,
    parse_spec,
    point_name,
    shipped_specs,
)

__all__ = [
    "BACKENDS",
    "Point",
    "SweepEvent",
    "SweepResult",
    "SweepSpec",
    "dry_run_rows",
    "expand",
    "format_value",
    "load_spec",
    "make_executor",
    "parse_spec",
    "point_name",
    "run_sweep",
    "shipped_specs",
]
