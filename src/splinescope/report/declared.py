"""What each probe of a run declared: its kind and outputs, read from the stored specs and
the probe registry (never hard-coded per probe in the report)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from splinescope.monitor.outputs import Outputs, ScalarKey
from splinescope.monitor.registry import get_kind, kinds
from splinescope.store.rundata import RunData

# Runs stored before probes recorded their specs used fixed probe names equal to the kinds;
# their adversarial probe logged <attack>_<norm>_acc keys (and train_ twins).
_LEGACY_ADVERSARIAL = Outputs(
    (
        ScalarKey(
            "train_*_acc",
            "train adversarial accuracy",
            headline=True,
            axis="accuracy",
            role="train_adversarial_accuracy",
        ),
        ScalarKey(
            "*_acc",
            "adversarial accuracy",
            headline=True,
            axis="accuracy",
            role="test_adversarial_accuracy",
        ),
    )
)


@dataclass(frozen=True)
class Declared:
    """One probe of a run as the report sees it: store name, kind (None if unknown) and
    declared outputs (empty if unknown: every key is then shown as it is)."""

    probe: str
    kind: str | None
    outputs: Outputs

    def label(self, key: str) -> str:
        """The declared label of ``key`` (the key itself if undeclared); per-layer and
        per-class families get the key's variable part appended."""
        family = self.outputs.scalar(key)
        if family is None:
            return key
        if "*" in family.pattern:
            head, _, tail = family.pattern.partition("*")
            part = key[len(head) : len(key) - len(tail) if tail else None]
            return f"{family.label}: {part}"
        return family.label


def _legacy(probe: str) -> Declared:
    if probe == "adversarial":
        return Declared(probe, "adversarial", _LEGACY_ADVERSARIAL)
    if probe in kinds():
        kind = get_kind(probe)
        return Declared(probe, probe, kind.build({}).outputs())
    return Declared(probe, None, Outputs())


def declared(run: RunData, probe: str) -> Declared:
    """What ``probe`` of ``run`` declared (its stored spec, else the legacy built-in)."""
    spec = run.probe_specs.get(probe)
    if spec is None:
        return _legacy(probe)
    kind = spec.get("kind")
    return Declared(
        probe,
        kind if kind in kinds() else None,
        Outputs.from_dict(spec.get("outputs", {})),
    )


def probes_of(runs: Sequence[RunData]) -> list[Declared]:
    """Every probe of the runs (first run's declaration wins), in first-logged order."""
    out: dict[str, Declared] = {}
    for run in runs:
        for probe in [*run.probe_specs, *run.probes()]:
            if probe not in out and (probe in run.probes() or probe in run.probe_specs):
                out[probe] = declared(run, probe)
    return list(out.values())


def headline_series(runs: Sequence[RunData]) -> list[tuple[str | None, str, str, str]]:
    """``(axis, probe, key, label)`` of every logged headline key of the runs (``axis`` None
    where the family names none); the probe name is added to the label when two probes
    share a label."""
    rows = []
    for d in probes_of(runs):
        keys = dict.fromkeys(k for r in runs for k in r.keys(d.probe))
        for key in keys:
            family = d.outputs.scalar(key)
            if family is not None and family.headline:
                rows.append((family.axis, d.probe, key, d.label(key)))
    labels = [label for *_, label in rows]
    return [
        (axis, probe, key, label if labels.count(label) == 1 else f"{label} ({probe})")
        for axis, probe, key, label in rows
    ]


def wants_array(run_specs: dict, probe: str, key: str) -> bool:
    """Whether the report loads array ``key`` of ``probe`` (declared ``report`` or ``image``)."""
    spec = run_specs.get(probe)
    outputs = (
        Outputs.from_dict(spec.get("outputs", {})) if spec is not None else _legacy(probe).outputs
    )
    family = outputs.array(key)
    return family is not None and (family.report or family.image)
