"""The shipped probes: each a thin registered object over a pure measure function.

Importing this package registers them (see :mod:`splinescope.monitor.registry`).
"""

from splinescope.monitor.probes.accuracy import AccuracyProbe
from splinescope.monitor.probes.adversarial import AdversarialProbe
from splinescope.monitor.probes.boundary import BoundaryLCProbe
from splinescope.monitor.probes.calibration import CalibrationProbe
from splinescope.monitor.probes.codes import CodesProbe
from splinescope.monitor.probes.collapse import NeuralCollapseProbe
from splinescope.monitor.probes.complexity import LocalComplexityProbe
from splinescope.monitor.probes.dimension import IntrinsicDimensionProbe
from splinescope.monitor.probes.hessian import HessianProbe
from splinescope.monitor.probes.migration import MigrationProbe
from splinescope.monitor.probes.partition import PartitionProbe
from splinescope.monitor.probes.similarity import CKADriftProbe, LayerCKAProbe
from splinescope.monitor.probes.units import UnitActivityProbe
from splinescope.monitor.probes.weights import WeightNormProbe

__all__ = [
    "AccuracyProbe",
    "AdversarialProbe",
    "BoundaryLCProbe",
    "CKADriftProbe",
    "CalibrationProbe",
    "CodesProbe",
    "HessianProbe",
    "MigrationProbe",
    "IntrinsicDimensionProbe",
    "LayerCKAProbe",
    "LocalComplexityProbe",
    "NeuralCollapseProbe",
    "PartitionProbe",
    "UnitActivityProbe",
    "WeightNormProbe",
]
