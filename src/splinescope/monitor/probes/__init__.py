"""The shipped probes: each a thin registered object over a pure measure function.

Importing this package registers them (see :mod:`splinescope.monitor.registry`).
"""

from splinescope.monitor.probes.accuracy import AccuracyProbe
from splinescope.monitor.probes.adversarial import AdversarialProbe
from splinescope.monitor.probes.codes import CodesProbe
from splinescope.monitor.probes.complexity import LocalComplexityProbe
from splinescope.monitor.probes.hessian import HessianProbe
from splinescope.monitor.probes.partition import PartitionProbe
from splinescope.monitor.probes.units import UnitActivityProbe
from splinescope.monitor.probes.weights import WeightNormProbe

__all__ = [
    "AccuracyProbe",
    "AdversarialProbe",
    "CodesProbe",
    "HessianProbe",
    "LocalComplexityProbe",
    "PartitionProbe",
    "UnitActivityProbe",
    "WeightNormProbe",
]
