"""Model introspection: find, name and read the units that define the input-space partition."""

from splinescope.nn.describe import describe
from splinescope.nn.guard import measuring
from splinescope.nn.states import count_cut_units, record_states, unit_states
from splinescope.nn.units import PartitionUnits, UnitLayer

__all__ = [
    "PartitionUnits",
    "UnitLayer",
    "count_cut_units",
    "describe",
    "measuring",
    "record_states",
    "unit_states",
]
