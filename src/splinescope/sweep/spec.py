"""A sweep's spec (a TOML file) and its expansion into runs named after their coordinates.

    name = "omnigrok-digits"          # the sweep's name (default: the file's stem)
    base = "grok-digits"              # a preset name or a config file (relative to the spec)
    seeds = [0, 1]                    # one run per seed at every point (default: the base's)
    retries = 1                       # a failed run is tried again this many times
    threads = 1                       # torch threads per run (default: cores / jobs)
    population = true                 # points differing only in seed, init_scale, weight_decay,
                                      # lr train together, stacked (pool; false: one by one)

    [set]                             # fixed overrides of the base, for every run
    steps = 30000
    "probes.lc.n_points" = 200

    [grid]                            # every combination of these axes
    init_scale = [1, 2, 4, 8]
    weight_decay = [0.0, 0.01, 0.1]

    [[zip]]                           # these axes move together (equal lengths)
    width = [50, 100, 200]
    lr = [3e-3, 2e-3, 1e-3]

    [resources]                       # per run, on Ray
    num_cpus = 1
    num_gpus = 0

    [report]                          # the phase charts' axes and quantities (optional)
    x = "init_scale"
    y = "weight_decay"
    quantities = ["grokking_gap", "accuracy/test_acc"]

An axis is a config field (``depth``, ``init_scale``) or a dotted probe or data option field
(``"probes.lc.radius"``, ``"data_options.p"``; nested tables such as ``[grid.probes.lc]`` mean
the same); its values are a list. Points are the grid's product, zipped groups included as
one axis each, then the seeds; each point's run is named
``SWEEP/axis=value,...,seed=S``. Every point's config is built and checked when the spec is
read, so a bad axis or value is an error before anything runs.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from splinescope.errors import SplinescopeError
from splinescope.train.config import TrainConfig, apply_overrides, load_config_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SPEC_KEYS = ("name", "description", "base", "seeds", "retries", "threads", "set", "grid", "zip")
SPEC_KEYS = (*SPEC_KEYS, "resources", "report", "population")
RESOURCE_KEYS = ("num_cpus", "num_gpus")
REPORT_KEYS = ("x", "y", "quantities")
SHIPPED = Path(__file__).resolve().parent.parent / "sweeps"


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its name, position in the expansion, coordinates and config."""

    name: str
    index: int
    coords: dict[str, Any]
    config: TrainConfig


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec (see the module docstring); ``axes`` are ``(key, values)`` pairs
    in order, ``zips`` groups of such pairs that move together."""

    name: str
    base: str
    base_config: TrainConfig
    fixed: Mapping[str, Any] = field(default_factory=dict)
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    zips: tuple[tuple[tuple[str, tuple[Any, ...]], ...], ...] = ()
    seeds: tuple[int, ...] | None = None
    retries: int = 1
    threads: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    description: str = ""
    report: Mapping[str, Any] = field(default_factory=dict)
    population: bool = True  # train stackable points together (splinescope.sweep.population)

    @property
    def axis_names(self) -> tuple[str, ...]:
        """The coordinate names of every point, in order (``seed`` last when seeds vary)."""
        names = [k for k, _ in self.axes] + [k for group in self.zips for k, _ in group]
        return (*names, "seed") if self.seeds is not None else tuple(names)

    def to_dict(self) -> dict[str, Any]:
        """The spec as stored with the sweep's record (JSON-able)."""
        return {
            "name": self.name,
            "description": self.description,
            "base": self.base,
            "set": {k: _plain(v) for k, v in self.fixed.items()},
            "grid": {k: [_plain(v) for v in vs] for k, vs in self.axes},
            "zip": [{k: [_plain(v) for v in vs] for k, vs in g} for g in self.zips],
            "seeds": None if self.seeds is None else list(self.seeds),
            "retries": self.retries,
            "threads": self.threads,
            "resources": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "report": dict(self.report),
            "population": self.population,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _flatten(table: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables as dotted keys: ``{"probes": {"lc": {"radius": v}}}`` ->
    ``{"probes.lc.radius": v}`` (``data_options`` values that are tables stay whole)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and full != "data_options":
            out.update(_flatten(value, where, full + "."))
        else:
            out[full] = value
    return out


def _axis(key: str, values: Any, where: str) -> tuple[str, tuple[Any, ...]]:
    if not isinstance(values, list) or not values:
        raise SplinescopeError(
            f"{where} axis {key!r}: expected a non-empty list of values, got {values!r}"
        )
    return key, tuple(values)


def _int(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SplinescopeError(f"{what} must be an integer ≥ {low}, got {value!r}")
    return value


def _base_config(base: Any, base_dir: Path) -> TrainConfig:
    from splinescope.presets import PRESETS, preset_config

    if not isinstance(base, str) or not base:
        raise SplinescopeError(f"sweep spec 'base': a preset name or a config file, got {base!r}")
    if base in PRESETS:
        return preset_config(base)
    path = Path(base) if Path(base).is_absolute() else base_dir / base
    if path.is_file() or base.endswith(".toml"):
        return load_config_file(path, preset_config)
    return preset_config(base)  # raises, listing the presets


def parse_spec(
    values: Mapping[str, Any], *, name: str = "sweep", base_dir: str | os.PathLike = "."
) -> SweepSpec:
    """A :class:`SweepSpec` from a spec's TOML tables (``name`` and ``base_dir``: defaults
    for the sweep name and where a relative ``base`` file is found)."""
    values = dict(values)
    unknown = sorted(set(values) - set(SPEC_KEYS))
    if unknown:
        raise SplinescopeError(
            f"sweep spec: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SPEC_KEYS)}"
        )
    if "base" not in values:
        raise SplinescopeError("sweep spec: 'base' is missing (a preset name or a config file)")
    sweep_name = values.get("name", name)
    if not isinstance(sweep_name, str) or not sweep_name or "/" in sweep_name:
        raise SplinescopeError(
            f"sweep spec 'name': a non-empty name without '/', got {sweep_name!r}"
        )
    base = _base_config(values["base"], Path(base_dir))
    fixed = _flatten(values.get("set", {}), "set")
    grid = [_axis(k, v, "[grid]") for k, v in _flatten(values.get("grid", {}), "grid").items()]
    zips_raw = values.get("zip", [])
    if isinstance(zips_raw, dict):
        zips_raw = [zips_raw]
    zips = []
    for i, group in enumerate(zips_raw):
        pairs = tuple(_axis(k, v, f"[[zip]] #{i + 1}") for k, v in _flatten(group, "zip").items())
        lengths = {k: len(v) for k, v in pairs}
        if len(set(lengths.values())) > 1:
            raise SplinescopeError(
                f"[[zip]] #{i + 1}: zipped axes must have equal lengths, got {lengths}"
            )
        if pairs:
            zips.append(pairs)
    keys = [k for k, _ in grid] + [k for g in zips for k, _ in g]
    seeds = values.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds:
            raise SplinescopeError(f"sweep spec 'seeds': a non-empty list, got {seeds!r}")
        seeds = tuple(_int(s, "sweep spec 'seeds' entry", 0) for s in seeds)
        keys.append("seed")
    twice = sorted({k for k in keys if keys.count(k) > 1} | (set(keys) & set(fixed)))
    if twice:
        raise SplinescopeError(
            f"sweep spec: {', '.join(twice)} given more than once (axes, [set] and seeds "
            "must not overlap)"
        )
    resources = dict(values.get("resources", {}))
    bad = sorted(set(resources) - set(RESOURCE_KEYS))
    if bad:
        raise SplinescopeError(
            f"[resources]: unknown key(s) {', '.join(bad)}; valid: {', '.join(RESOURCE_KEYS)}"
        )
    for key in RESOURCE_KEYS:
        v = resources.get(key, 1.0 if key == "num_cpus" else 0.0)
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not (v >= 0 and math.isfinite(v))
        ):
            raise SplinescopeError(f"[resources] {key}: a number ≥ 0, got {v!r}")
        resources[key] = float(v)
    report = dict(values.get("report", {}))
    bad = sorted(set(report) - set(REPORT_KEYS))
    if bad:
        raise SplinescopeError(
            f"[report]: unknown key(s) {', '.join(bad)}; valid: {', '.join(REPORT_KEYS)}"
        )
    for key in ("x", "y"):
        if key in report and report[key] not in keys:
            raise SplinescopeError(
                f"[report] {key} = {report[key]!r} is not an axis; axes: {', '.join(keys)}"
            )
    threads = values.get("threads")
    population = values.get("population", True)
    if not isinstance(population, bool):
        raise SplinescopeError(f"sweep spec 'population': true or false, got {population!r}")
    spec = SweepSpec(
        name=sweep_name,
        base=values["base"],
        base_config=base,
        fixed=fixed,
        axes=tuple(grid),
        zips=tuple(zips),
        seeds=seeds,
        retries=_int(values.get("retries", 1), "sweep spec 'retries'", 0),
        threads=None if threads is None else _int(threads, "sweep spec 'threads'", 1),
        num_cpus=resources["num_cpus"],
        num_gpus=resources["num_gpus"],
        description=str(values.get("description", "")),
        report=report,
        population=population,
    )
    expand(spec)  # every point's config is checked now
    return spec


def load_spec(target: str | os.PathLike) -> SweepSpec:
    """A spec from a TOML file, or a shipped spec by name (``splinescope sweep --list``)."""
    path = Path(target)
    if not path.is_file():
        shipped = SHIPPED / f"{target}.toml"
        if not str(target).endswith(".toml") and shipped.is_file():
            path = shipped
        else:
            names = ", ".join(shipped_specs()) or "none"
            raise SplinescopeError(
                f"sweep spec {str(target)!r}: not a file nor a shipped spec (shipped: {names})"
            )
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SplinescopeError(f"sweep spec {str(path)!r}: invalid TOML ({exc})") from exc
    try:
        return parse_spec(values, name=path.stem, base_dir=path.parent)
    except SplinescopeError as exc:
        raise SplinescopeError(f"sweep spec {str(path)!r}: {exc}") from None


def shipped_specs() -> list[str]:
    """The names of the sweep specs shipped with splinescope."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def format_value(value: Any) -> str:
    """A coordinate value as written in run names: shortest round-trip floats, ints as
    ints, lists joined by 'x', booleans lower-case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (list, tuple)):
        return "x".join(format_value(v) for v in value)
    return str(value)


def point_name(sweep: str, coords: Mapping[str, Any]) -> str:
    """``SWEEP/axis=value,...`` (the sweep's name alone for a sweep without axes)."""
    if not coords:
        return sweep
    return f"{sweep}/" + ",".join(f"{k}={format_value(v)}" for k, v in coords.items())


def expand(spec: SweepSpec) -> list[Point]:
    """Every point of ``spec``, in order: the grid's product (last axis fastest), then
    zipped groups, then seeds. Each config is the base with [set], the coordinates and the
    run's name applied and checked (SplinescopeError naming the point otherwise)."""
    dims: list[list[dict[str, Any]]] = [[{k: v} for v in vs] for k, vs in spec.axes]
    for group in spec.zips:
        n = len(group[0][1])
        dims.append([{k: vs[i] for k, vs in group} for i in range(n)])
    if spec.seeds is not None:
        dims.append([{"seed": s} for s in spec.seeds])
    try:
        base = apply_overrides(spec.base_config, spec.fixed)
    except SplinescopeError as exc:
        raise SplinescopeError(f"[set]: {exc}") from None
    points = []
    for index, combo in enumerate(itertools.product(*dims)):
        coords = {k: v for part in combo for k, v in part.items()}
        name = point_name(spec.name, coords)
        try:
            config = apply_overrides(base, {**coords, "name": name})
        except SplinescopeError as exc:
            raise SplinescopeError(f"point {name!r}: {exc}") from None
        points.append(Point(name, index, coords, config))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SplinescopeError(f"two points are both named {dup!r} (repeated axis values?)")
    return points


def dry_run_rows(spec: SweepSpec, points: Sequence[Point]) -> list[dict[str, Any]]:
    """One row per point for ``--dry-run``: index, run name, coordinates, steps."""
    return [
        {
            "#": p.index,
            "run": p.name,
            **{k: format_value(v) for k, v in p.coords.items()},
            "steps": p.config.steps,
        }
        for p in points
    ]
