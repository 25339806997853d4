"""Hostile configs and data. Generated TOML config files and ``--set`` overrides (wrong types,
unknown fields, out-of-range and huge values, non-finite floats, unicode, odd probe tables)
either run a few steps or stop with a SplinescopeError that names a field they set — never
another exception; user data that cannot be trained on is refused before training."""

from __future__ import annotations

import json
import math
import string
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splinescope.data import from_tensors
from splinescope.errors import SplinescopeError
from splinescope.presets import preset_config
from splinescope.train import apply_overrides, load_config_file, parse_assignment, train
from splinescope.train.config import FIELD_NAMES
from splinescope.train.signals import Interrupted

#: A small valid run the generated values are laid over, so that a config that is accepted
#: trains in well under a second.
BASE = {
    "dataset": "digits",
    "n_train": 60,
    "width": 8,
    "depth": 1,
    "batch_size": 20,
    "steps": 3,
    "schedule": "every:1",
    "n_random": 20,
    "checkpoint": False,
}
OUTCOMES: Counter = Counter()  # what the generated inputs did, printed at the end (-s)


@pytest.fixture(scope="module", autouse=True)
def _print_outcomes():
    yield
    print(f"\nhostile configs: {sum(OUTCOMES.values())} generated, {dict(OUTCOMES)}")


huge = st.sampled_from([2**31, 2**63, 2**64 + 1, 10**30, -(2**63) - 1, 10**400])
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-320, 1e308, -1.0, 0.5, 1.0]),
)
text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="é漢字🚀\u202e\x00<>&\"'\\/.:;,", max_size=8),
    st.sampled_from(["relu", "mlp", "digits", "log:0", "log:10000000000", "every:0",
                     "every:-3", "steps:", "steps:1,x", "adamw", "cuda", "off", ""]),
)  # fmt: skip
scalar = st.one_of(st.integers(-5, 50), huge, floats, text, st.booleans())
value = st.one_of(
    scalar,
    st.lists(scalar, max_size=3),
    st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=6), scalar, max_size=2),
)
field_name = st.one_of(
    st.sampled_from([f for f in FIELD_NAMES if f not in ("probes",)]),
    st.text(string.ascii_lowercase + "_é", min_size=1, max_size=10),
)
probe_table = st.dictionaries(
    st.sampled_from(["kind", "name", "schedule", "radius", "n_points", "eps", "splits", "k",
                     "seed", "attack", "bogus", "layers"]),
    st.one_of(scalar, st.sampled_from(["accuracy", "lc", "adversarial", "weights", "units"]),
              st.lists(scalar, max_size=2)),
    max_size=4,
)  # fmt: skip


def _toml(value) -> str:
    """A value in TOML (the writer hypothesis's values need; TOML has nan and inf)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # A TOML basic string: JSON's escapes, plus DEL, which TOML also wants escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _names_a_field(message: str, fields) -> bool:
    return any(str(f) in message or json.dumps(str(f))[1:-1] in message for f in fields)


def _outcome(path: Path, sets: list[str], runs_dir: Path, touched) -> str:
    try:
        config = load_config_file(path, preset_config)
        config = apply_overrides(config, dict(parse_assignment(s) for s in sets))
        train(config, runs_dir=runs_dir, stop_after=2)
    except Interrupted:
        return "ran"
    except SplinescopeError as exc:
        assert _names_a_field(str(exc), touched), (str(exc), touched)
        return "refused"
    return "ran"


def check_one(tmp_path: Path, fields: dict, probes: list[dict] | None, sets: list) -> str:
    lines = [f"{json.dumps(k)} = {_toml(v)}" for k, v in {**BASE, **fields}.items()]
    tables = probes if probes is not None else [{"kind": "accuracy"}]
    for table in tables:
        lines.append("[[probes]]")
        lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in table.items()]
    path = tmp_path / "hostile.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    touched = [*fields, *(s.split("=", 1)[0].split(".")[-1] for s in sets)]
    touched += [s.split("=", 1)[0] for s in sets]
    if probes is not None:
        touched += [
            "probes",
            *(k for t in probes for k in t),
            *(str(v) for t in probes for v in t.values()),
        ]
    outcome = _outcome(path, sets, tmp_path / "runs", touched)
    OUTCOMES[outcome] += 1
    return outcome


assignment = st.builds(
    lambda k, v: f"{k}={v}",
    st.one_of(field_name, st.sampled_from(["probes.accuracy.kind", "probes.accuracy", "probes.x.kind",
                                           "probes.accuracy.bogus", "data_options.p", "lr.x"])),
    st.one_of(text, st.integers(-3, 10**20).map(str), floats.map(str)),
)  # fmt: skip


def _property(n: int):
    @settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        fields=st.dictionaries(field_name, value, max_size=3),
        probes=st.one_of(st.none(), st.lists(probe_table, max_size=2)),
        sets=st.lists(assignment, max_size=2),
    )
    def prop(tmp_path, fields, probes, sets):
        check_one(tmp_path, fields, probes, sets)

    return prop


test_generated_configs_run_or_name_a_field = pytest.mark.slow(_property(60))
test_many_generated_configs = pytest.mark.soak(_property(1500))


def test_a_few_hostile_configs_by_hand(tmp_path):
    cases = [
        ({"width": 10**30}, None, []),
        ({"steps": 10**30, "schedule": "log:10000000000"}, None, []),
        ({"seed": 2**64 + 1}, None, []),
        ({"schedule": "every:0"}, None, []),
        ({"n_train": 10**6}, None, []),
        ({"lr": math.inf}, None, []),
        ({"name": "\x00🚀<script>"}, None, []),
        ({}, [{"kind": "lc", "n_points": 10**12}], []),
        ({}, [{"kind": "nope"}], []),
        ({}, None, ["probes.accuracy.kind=lc", "steps=abc"]),
    ]
    outcomes = [check_one(tmp_path, f, p, s) for f, p, s in cases]
    assert outcomes.count("refused") >= 7, outcomes


# -- data -------------------------------------------------------------------------------------


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.random((20, 5)),
        "y_train": rng.integers(0, 3, 20),
        "x_test": rng.random((8, 5)),
        "y_test": rng.integers(0, 3, 8),
    }


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"x_train": np.full((20, 5), np.nan)}, "x_train"),
        ({"x_test": np.full((8, 5), np.inf)}, "x_test"),
        ({"y_train": np.full(20, np.nan)}, "y_train holds NaN"),
        ({"y_train": np.full(20, 1e30)}, "y_train holds labels beyond"),
        ({"y_test": -np.ones(8, dtype=int)}, "y_test"),
        ({"y_test": np.array(["a"] * 8)}, "y_test"),
        ({"x_train": np.array([["a"] * 5] * 20)}, "x_train"),
        ({"x_train": np.zeros((20, 5), dtype=complex)}, "x_train"),
        ({"x_train": np.zeros((0, 5)), "y_train": np.zeros(0, dtype=int)}, "x_train"),
        ({"x_train": np.zeros((20, 6))}, "x_train"),
        ({"y_train": np.zeros(19, dtype=int)}, "y_train"),
        ({"y_train": np.zeros((20, 2), dtype=int)}, "y_train"),
        ({"y_train": torch.ones(20, dtype=torch.bool)}, "y_train"),
        ({"x_train": [[1.0, 2.0], [3.0]]}, "x_train"),
    ],
)
def test_bad_user_data_is_refused_naming_the_array(change, named):
    with pytest.raises(SplinescopeError, match=named):
        from_tensors(**{**_arrays(), **change})


def test_labels_out_of_range_for_n_classes_are_refused():
    with pytest.raises(SplinescopeError, match="n_classes=2 but the labels go up to 2"):
        from_tensors(**_arrays(), n_classes=2)
