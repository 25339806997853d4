"""Watch a network while it trains: the probe registry, probes, schedules and the Monitor.

>>> from splinescope.monitor import kinds
>>> sorted(kinds())[:3]
['accuracy', 'adversarial', 'codes']
"""

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
    CodesProbe,
    HessianProbe,
    LocalComplexityProbe,
    PartitionProbe,
    UnitActivityProbe,
    WeightNormProbe,
)
from splinescope.monitor.registry import (
    ArrayKey,
    Outputs,
    ProbeKind,
    ProbeTable,
    ScalarKey,
    get_kind,
    kinds,
    probe_kind,
    register_probe,
    skipped_plugins,
)
from splinescope.monitor.schedules import (
    EverySchedule,
    ExplicitSchedule,
    LogSchedule,
    Schedule,
    parse_schedule,
)

__all__ = [
    "AccuracyProbe",
    "AdversarialProbe",
    "ArrayKey",
    "CodesProbe",
    "EverySchedule",
    "ExplicitSchedule",
    "HessianProbe",
    "LocalComplexityProbe",
    "LogSchedule",
    "Monitor",
    "Outputs",
    "PartitionProbe",
    "Probe",
    "ProbeContext",
    "ProbeKind",
    "ProbeResult",
    "ProbeTable",
    "ScalarKey",
    "Schedule",
    "UnitActivityProbe",
    "WeightNormProbe",
    "check_probe",
    "get_kind",
    "kinds",
    "parse_schedule",
    "probe_kind",
    "random_points",
    "register_probe",
    "skipped_plugins",
]
