"""The shipped probes: each a thin object over a pure measure function."""

from splinescope.monitor.probes.accuracy import AccuracyProbe, evaluate
from splinescope.monitor.probes.adversarial import AdversarialProbe, AttackSpec, attack_accuracy
from splinescope.monitor.probes.codes import CodesProbe
from splinescope.monitor.probes.complexity import LocalComplexityProbe
from splinescope.monitor.probes.hessian import HessianProbe
from splinescope.monitor.probes.partition import PartitionProbe
from splinescope.monitor.probes.units import UnitActivity, UnitActivityProbe, unit_activity
from splinescope.monitor.probes.weights import WeightNormProbe, weight_norms

__all__ = [
    "AccuracyProbe",
    "AdversarialProbe",
    "AttackSpec",
    "CodesProbe",
    "HessianProbe",
    "LocalComplexityProbe",
    "PartitionProbe",
    "UnitActivity",
    "UnitActivityProbe",
    "WeightNormProbe",
    "attack_accuracy",
    "evaluate",
    "unit_activity",
    "weight_norms",
]
