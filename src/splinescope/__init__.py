"""splinescope: a microscope for deep networks in training.

The public surface is kept small and deliberate; everything else lives in subpackages.
"""

from splinescope.errors import NoPartitionUnitsError, SplinescopeError

__version__ = "0.1.0"

__all__ = [
    "NoPartitionUnitsError",
    "SplinescopeError",
    "__version__",
]
