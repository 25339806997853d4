"""Watch a network while it trains: probes, schedules and the Monitor that runs them."""

from splinescope.monitor.monitor import Monitor
from splinescope.monitor.probe import (
    Probe,
    ProbeContext,
    ProbeResult,
    check_probe,
    random_points,
)
from splinescope.monitor.probes import (
    AccuracyProbe,
    AdversarialProbe,
    AttackSpec,
    CodesProbe,
    HessianProbe,
    LocalComplexityProbe,
    PartitionProbe,
    UnitActivityProbe,
    WeightNormProbe,
    attack_accuracy,
    evaluate,
    unit_activity,
    weight_norms,
)
from splinescope.monitor.schedules import EverySchedule, ExplicitSchedule, LogSchedule, Schedule

__all__ = [
    "AccuracyProbe",
    "AdversarialProbe",
    "AttackSpec",
    "CodesProbe",
    "EverySchedule",
    "ExplicitSchedule",
    "HessianProbe",
    "LocalComplexityProbe",
    "LogSchedule",
    "Monitor",
    "PartitionProbe",
    "Probe",
    "ProbeContext",
    "ProbeResult",
    "Schedule",
    "UnitActivityProbe",
    "WeightNormProbe",
    "attack_accuracy",
    "check_probe",
    "evaluate",
    "random_points",
    "unit_activity",
    "weight_norms",
]
