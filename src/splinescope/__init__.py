"""splinescope: a microscope for deep networks in training.

The public surface is kept small and deliberate; everything else lives in subpackages.
"""

from splinescope.errors import NoPartitionUnitsError, SplinescopeError
from splinescope.geometry.complexity import LocalComplexity, local_complexity
from splinescope.nn import describe, record_states

__version__ = "0.1.0"

__all__ = [
    "LocalComplexity",
    "NoPartitionUnitsError",
    "SplinescopeError",
    "__version__",
    "describe",
    "local_complexity",
    "record_states",
]
