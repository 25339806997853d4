"""The probe registry: registration rules, [[probes]] tables, specs kept with a run."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from splinescope.errors import SplinescopeError
from splinescope.monitor import (
    LocalComplexityProbe,
    Outputs,
    ProbeResult,
    ProbeTable,
    ScalarKey,
    get_kind,
    kinds,
    register_probe,
)
from splinescope.monitor.registry import _KINDS, parse_tables, probe_spec


@dataclass(frozen=True)
class Const:
    """A constant, for registry tests."""

    value: float = 1.0
    name: str = "const"
    needs: tuple = ()

    def outputs(self):
        return Outputs((ScalarKey("value", "the constant"),))

    def compute(self, model, ctx):
        return ProbeResult(scalars={"value": self.value})


@pytest.fixture
def const_kind():
    kind = register_probe("const_test", Const)
    yield kind
    _KINDS.pop("const_test", None)


def test_every_builtin_kind_is_registered_with_a_description():
    names = set(kinds())
    assert {"accuracy", "lc", "adversarial", "weights", "units", "hessian", "codes"} <= names
    assert all(kind.description for kind in kinds().values())


def test_a_registered_kind_builds_validated_probes(const_kind):
    assert get_kind("const_test") is const_kind
    assert const_kind.description == "A constant, for registry tests."
    probe = const_kind.build({"value": 2})
    assert probe == Const(value=2.0)
    with pytest.raises(SplinescopeError, match="field 'valu' is unknown .did you mean value"):
        const_kind.build({"valu": 2})


def test_registration_refuses_what_cannot_work(const_kind):
    with pytest.raises(SplinescopeError, match="already registered"):
        register_probe("const_test", LocalComplexityProbe)

    @dataclass(frozen=True)
    class NoName:
        value: float = 1.0

    with pytest.raises(SplinescopeError, match="needs a 'name' field"):
        register_probe("no_name", NoName)

    @dataclass(frozen=True)
    class NoDefault:
        value: float
        name: str = "x"

    with pytest.raises(SplinescopeError, match=r"\['value'\] have none"):
        register_probe("no_default", NoDefault)

    @dataclass(frozen=True)
    class NoCompute:
        name: str = "x"

    with pytest.raises(SplinescopeError, match="no compute"):
        register_probe("no_compute", NoCompute)
    with pytest.raises(SplinescopeError, match="kind name"):
        register_probe("bad name!", Const)


def test_unknown_kinds_list_the_registered_ones():
    with pytest.raises(
        SplinescopeError, match="probe kind 'lcc' is not registered; registered kinds: "
    ):
        get_kind("lcc")


def test_tables_name_instances_and_check_their_fields():
    tables = parse_tables(
        [{"kind": "lc", "name": "lc_r5", "radius": 5.0, "schedule": "every:10"}, {"kind": "lc"}]
    )
    assert [t.name for t in tables] == ["lc_r5", "lc"]
    assert tables[0].build() == LocalComplexityProbe(radius=5.0, name="lc_r5")
    assert tables[0].to_dict() == {
        "kind": "lc",
        "name": "lc_r5",
        "schedule": "every:10",
        "radius": 5.0,
    }
    for table, message in [
        ({"radius": 1.0}, "needs kind"),
        ({"kind": "lc", "name": "a.b"}, "without '.' or '/'"),
        ({"kind": "lc", "schedule": 3}, "schedule must be text"),
        ({"kind": "lc", "radius": -1.0}, "radius: must be > 0"),
    ]:
        with pytest.raises(SplinescopeError, match=message):
            ProbeTable.parse(table)


def test_the_spec_kept_with_a_run_holds_kind_config_schedule_and_outputs():
    probe = LocalComplexityProbe(radius=0.5, splits=("train",), per_class=False, name="lc05")
    spec = probe_spec(probe, "EverySchedule(k=10, max_step=None)")
    assert spec["kind"] == "lc" and spec["config"]["radius"] == 0.5
    assert "needs" not in spec["config"]
    patterns = [s["pattern"] for s in spec["outputs"]["scalars"]]
    assert patterns == ["train_total", "train_total_sem", "train/*"]
    assert Outputs.from_dict(spec["outputs"]) == probe.outputs()
