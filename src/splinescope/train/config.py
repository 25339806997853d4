"""A run's config: a frozen dataclass read from presets, TOML files and ``--set`` overrides.

Every field is typed; overrides are converted to and checked against the field's type
(:mod:`splinescope.fields`), and an unknown field or a bad value is a
:class:`~splinescope.errors.SplinescopeError` naming the field and the valid values. Choices
(datasets, models, activations, probe kinds) come from the registries that define them, so
they cannot drift.

Probes are a list of tables, one per probe instance::

    [[probes]]
    kind = "lc"            # a registered kind (``splinescope probes`` lists them)
    name = "lc_r005"       # the store's probe name (default: the kind)
    radius = 0.05          # fields of the kind's config
    schedule = "log:60"    # optional: "log:N", "every:K", "steps:0,10,100"; default the run's

``--set probes.lc_r005.radius=0.1`` changes one field (type-checked against the kind's
config), ``--set probes.hessian.kind=hessian`` adds a probe, ``--set probes.units=off``
removes one, ``--set probes=[]`` removes them all. A probe table without ``seed`` takes the
run's ``seed`` when its kind has one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from splinescope import fields as F
from splinescope.errors import SplinescopeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: The probes of a run that names none: accuracy, LC, FGSM and PGD, weights, unit activity.
DEFAULT_PROBES: tuple[dict, ...] = (
    {"kind": "accuracy"},
    {"kind": "lc", "radius": 0.05, "n_points": 500},
    {
        "kind": "adversarial",
        "name": "fgsm",
        "attack": "fgsm",
        "eps": [0.05],
        "splits": ["test", "train"],
        "n_points": 300,
    },
    {
        "kind": "adversarial",
        "name": "pgd",
        "attack": "pgd",
        "eps": [0.05],
        "steps": 10,
        "splits": ["test", "train"],
        "n_points": 300,
    },
    {"kind": "weights"},
    {"kind": "units"},
)


#: Inclusive ranges of the integer fields. The upper bounds keep a typo from asking for an
#: impossible run (a width of 10^30, a seed torch cannot take); they are far beyond any run
#: this toolkit is meant for.
INT_RANGES: dict[str, tuple[int, int]] = {
    "width": (1, 2**20),
    "steps": (1, 2**62),
    "depth": (0, 1000),
    "n_train": (0, 2**40),
    "batch_size": (0, 2**31),
    "seed": (0, 2**63 - 1),
    "data_seed": (0, 2**63 - 1),
    "n_random": (0, 10**6),
}


def _choices() -> dict[str, tuple[str, ...]]:
    """Fields whose value must be one of a registry's names."""
    from splinescope.data import DATASET_NAMES
    from splinescope.models import MODELS
    from splinescope.models._common import ACTIVATIONS

    return {"dataset": DATASET_NAMES, "model": tuple(MODELS), "activation": tuple(ACTIVATIONS)}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. Units: steps are optimizer updates; radii and budgets
    in a probe's config are in input units (the data domain, e.g. [0, 1] for digits)."""

    name: str = "run"
    description: str = ""
    # data
    dataset: str = "digits"
    data_options: dict = field(default_factory=dict)
    n_train: int = 0  # 0: the whole training split
    label_noise: float = 0.0
    data_seed: int = 0
    # model
    model: str = "mlp"
    width: int = 200
    depth: int = 2
    activation: str = "relu"
    init_scale: float = 1.0
    channels: tuple[int, ...] = (32, 64)
    batchnorm: bool = False
    # optimisation
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9
    loss: Literal["mse", "cross_entropy"] = "mse"
    batch_size: int = 200  # 0: full batch
    steps: int = 100_000
    seed: int = 0
    device: Literal["cpu", "cuda", "mps"] = "cpu"
    # measuring
    schedule: str = "log:60"
    probes: tuple[dict, ...] = DEFAULT_PROBES
    n_random: int = 500  # uniform random points in the training data's bounding box
    checkpoint: bool = True
    # a NaN or infinite loss or parameter marks the run "diverged"; "stop" ends training
    # there, "continue" trains on (the run still ends "diverged")
    on_divergence: Literal["stop", "continue"] = "stop"

    def __post_init__(self) -> None:
        for f in fields(self):
            F.convert(
                getattr(self, f.name),
                F.field_types(TrainConfig)[f.name],
                f"config field {f.name!r}",
            )
        for name, allowed in _choices().items():
            if getattr(self, name) not in allowed:
                raise SplinescopeError(
                    f"config field {name!r}: {getattr(self, name)!r} is not allowed; allowed "
                    f"values: {', '.join(allowed)}"
                )
        for name, (lo, hi) in INT_RANGES.items():
            if not lo <= getattr(self, name) <= hi:
                raise SplinescopeError(
                    f"config field {name!r}: must be between {lo:,} and {hi:,}, got "
                    f"{getattr(self, name):,}"
                )
        for c in self.channels:
            if not 1 <= c <= 2**16:
                raise SplinescopeError(
                    f"config field 'channels': each must be between 1 and 65,536, got {c:,}"
                )
        for name in ("weight_decay", "momentum"):
            if not math.isfinite(getattr(self, name)):
                raise SplinescopeError(f"config field {name!r}: must be a finite number")
        for name in ("lr", "init_scale"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise SplinescopeError(f"config field {name!r}: must be a finite number > 0")
        if not 0.0 <= self.label_noise < 1.0:
            raise SplinescopeError(
                f"config field 'label_noise': must be in [0, 1), got {self.label_noise}"
            )
        if self.weight_decay < 0:
            raise SplinescopeError("config field 'weight_decay': must be ≥ 0")
        from splinescope.monitor.schedules import parse_schedule

        parse_schedule(self.schedule, self.steps, where="config field 'schedule'")
        for table in self.probe_tables():
            if table.schedule is not None:
                parse_schedule(table.schedule, self.steps, where=f"probe {table.name!r} schedule")

    def probe_tables(self) -> list:
        """The probes as parsed :class:`~splinescope.monitor.registry.ProbeTable` objects."""
        from splinescope.monitor.registry import parse_tables

        return parse_tables(self.probes, "config field 'probes'")

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON- and TOML-friendly dict (tuples as lists)."""
        return {f.name: F.to_plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """A config from a dict (e.g. stored with a run); unknown keys are errors."""
        return apply_overrides(cls(), values)


FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))


def _probe_override(probes: list[dict], key: str, value: Any, *, from_text: bool) -> list[dict]:
    """``probes`` with ``probes.NAME[.FIELD] = value`` applied (see the module docstring)."""
    from splinescope.monitor.registry import TABLE_KEYS, get_kind

    parts = key.split(".")
    if len(parts) not in (2, 3) or not parts[1]:
        raise SplinescopeError(
            f"--set {key}: expected probes.NAME.FIELD=VALUE, probes.NAME.kind=KIND or "
            "probes.NAME=off"
        )
    name = parts[1]
    index = next((i for i, t in enumerate(probes) if t.get("name", t.get("kind")) == name), None)
    names = [t.get("name", t.get("kind")) for t in probes]
    if len(parts) == 2:
        if value not in ("off", False):
            raise SplinescopeError(f"--set {key}={value!r}: only 'off' removes a probe")
        if index is None:
            raise SplinescopeError(f"--set {key}: no probe named {name!r}; probes: {names}")
        return [t for i, t in enumerate(probes) if i != index]
    field_name = parts[2]
    if index is None:
        if field_name != "kind":
            raise SplinescopeError(
                f"--set {key}: no probe named {name!r} (probes: {names}); add one with "
                f"--set probes.{name}.kind=KIND"
            )
        return [*probes, {"kind": str(value), "name": name}]
    table = dict(probes[index])
    if field_name in TABLE_KEYS:
        typed = str(value)
    else:
        kind = get_kind(table["kind"])
        hints = F.field_types(kind.config)
        if field_name not in hints or field_name == "name":
            raise F.unknown_field(
                field_name,
                [*TABLE_KEYS[2:], *(h for h in hints if h != "name")],
                f"probe {name!r} (kind {table['kind']!r})",
            )
        where = f"probe {name!r} field {field_name!r}"
        hint = hints[field_name]
        typed = F.parse_text(value, hint, where) if from_text else F.convert(value, hint, where)
        typed = F.to_plain(typed)
    table[field_name] = typed
    return [*probes[:index], table, *probes[index + 1 :]]


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """``config`` with ``overrides`` applied; each key must be a field, each value of its type.

    ``data_options`` entries can be given as ``"data_options.<option>"`` keys and probe
    fields as ``"probes.<name>.<field>"`` keys. Values given as text (from ``--set``, see
    :func:`parse_assignment`) are read as the field's type.
    """
    types_ = F.field_types(TrainConfig)
    changes: dict[str, Any] = {}
    data_options = dict(config.data_options)
    probes = [dict(t) for t in config.probes]
    for key, value in overrides.items():
        if isinstance(value, _Text):
            text = True
            value = value.text
        else:
            text = False
        if key.startswith("data_options."):
            data_options[key.split(".", 1)[1]] = _toml_value(value) if text else value
            changes["data_options"] = data_options
            continue
        if key.startswith("probes."):
            probes = _probe_override(probes, key, value, from_text=text)
            changes["probes"] = tuple(probes)
            continue
        if key not in types_:
            raise F.unknown_field(key, FIELD_NAMES, "config")
        where = f"config field {key!r}"
        value = (
            F.parse_text(value, types_[key], where)
            if text
            else F.convert(value, types_[key], where)
        )
        if key == "data_options":
            data_options = {**data_options, **value}
            value = data_options
        if key == "probes":
            value = tuple(dict(t) for t in value)
            probes = list(value)
        changes[key] = value
    return dataclasses.replace(config, **changes)


@dataclass(frozen=True)
class _Text:
    """A value as typed on the command line, read as its field's type when applied."""

    text: str


def _toml_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_assignment(text: str) -> tuple[str, Any]:
    """A CLI ``KEY=VALUE`` as a pair for :func:`apply_overrides` (the value is read as the
    field's type there: lists are comma-separated, booleans ``true``/``false``)."""
    if "=" not in text:
        raise SplinescopeError(f"--set {text!r}: expected KEY=VALUE")
    key, raw = (part.strip() for part in text.split("=", 1))
    root = key.split(".", 1)[0]
    if root not in FIELD_NAMES:
        raise F.unknown_field(key, FIELD_NAMES, "config")
    if "." in key and root not in ("data_options", "probes"):
        raise SplinescopeError(f"--set {key}: only data_options and probes have sub-fields")
    if key == "probes":
        if raw.replace(" ", "") == "[]":
            return key, ()  # every probe off
        raise SplinescopeError(
            "--set probes: set one probe's field with probes.NAME.FIELD=VALUE, add a probe "
            "with probes.NAME.kind=KIND, remove one with probes.NAME=off, all of them with "
            "probes=[] (or write [[probes]] tables in a config file)"
        )
    return key, _Text(raw)


def load_config_file(path: str | os.PathLike, base: Callable[[str], TrainConfig]) -> TrainConfig:
    """A config from a TOML file: top-level fields and ``[[probes]]`` tables, optionally
    ``preset = "NAME"`` as the base (``base(name)`` returns a preset's config)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise SplinescopeError(f"config file {str(path)!r}: not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SplinescopeError(f"config file {str(path)!r}: invalid TOML ({exc})") from exc
    preset = values.pop("preset", None)
    config = base(preset) if preset is not None else TrainConfig()
    if "name" not in values and preset is None:
        values["name"] = path.stem
    try:
        return apply_overrides(config, values)
    except SplinescopeError as exc:
        raise SplinescopeError(f"config file {str(path)!r}: {exc}") from None
