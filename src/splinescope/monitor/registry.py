"""The probe registry: every probe kind registered once, read by config, training, the
report, the CLI and the tests.

A kind is registered with its name, its config dataclass (typed fields with defaults), a
factory, and a one-line description. The probe it builds declares what it emits
(:class:`Outputs`: scalar key patterns with labels and units, which are headline values and
what analysis reads them as, array keys with shape and dtype), and the kind may name a
report-figure builder. Built-in probes register themselves when :mod:`splinescope.monitor`
is imported; third-party probes register with :func:`register_probe` or through the
``splinescope.probes`` entry-point group::

    # pyproject.toml of a plugin package
    [project.entry-points."splinescope.probes"]
    sharpness = "my_package.probes:SharpnessProbe"

The entry point's name is the kind; its object is a probe dataclass (registered as
``register_probe(name, obj)``) or a :class:`ProbeKind`. A plugin that fails to load is never
dropped silently: it is listed in :func:`skipped_plugins` with the reason, and warned about.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from splinescope import fields as F
from splinescope.errors import SplinescopeError
from splinescope.monitor.outputs import ArrayKey, Outputs, ScalarKey

__all__ = [
    "ArrayKey",
    "Outputs",
    "ProbeKind",
    "ProbeTable",
    "ScalarKey",
    "get_kind",
    "kinds",
    "probe_kind",
    "register_probe",
    "skipped_plugins",
]

ENTRY_POINT_GROUP = "splinescope.probes"
#: Keys of a ``[[probes]]`` table that are not fields of the kind's config.
TABLE_KEYS = ("kind", "name", "schedule")


FigureBuilder = Callable[..., list]


@dataclass(frozen=True)
class ProbeKind:
    """A registered kind of probe.

    Attributes:
        name: the kind (``kind = "lc"`` in a ``[[probes]]`` table).
        config: the dataclass of its fields (typed, every field with a default; ``name`` is
            the instance name and default store probe name).
        factory: ``factory(config) -> probe``; the identity when the probe is its own
            config (the usual case: a frozen dataclass with ``compute`` and ``outputs``).
        description: one line on what it measures.
        figure: an optional report-figure builder ``builder(runs, probe_name, outputs) ->
            list[ReportFigure]``, or its import path ``"module:function"`` (imported only when
            a report is drawn, so registering costs no plotting import).
    """

    name: str
    config: type
    factory: Callable[[Any], Any]
    description: str = ""
    figure: FigureBuilder | str | None = None

    def fields(self) -> list[tuple[str, str, Any]]:
        """``(field, type in words, default)`` of every config field but ``name``."""
        out = []
        for f in dataclasses.fields(self.config):
            if not f.init or f.name == "name":
                continue
            default = f.default
            if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            out.append((f.name, F.describe_type(F.field_types(self.config)[f.name]), default))
        return out

    def build(self, values: Mapping[str, Any], *, where: str | None = None) -> Any:
        """A probe of this kind from its config fields ``values`` (validated)."""
        what = where or f"probe kind {self.name!r}"
        config = F.build(self.config, values, what)
        return self.factory(config)

    def figure_builder(self) -> FigureBuilder | None:
        """The report-figure builder (imported now if given by path), or None."""
        if self.figure is None or callable(self.figure):
            return self.figure
        module, _, attr = self.figure.partition(":")
        return getattr(importlib.import_module(module), attr)


def _itself(config: Any) -> Any:
    """The factory of a probe that is its own config."""
    return config


_KINDS: dict[str, ProbeKind] = {}
_SKIPPED: dict[str, str] = {}
_LOADED = False
_LOCK = threading.RLock()


def register_probe(
    name: str,
    config: type,
    *,
    factory: Callable[[Any], Any] | None = None,
    description: str | None = None,
    figure: FigureBuilder | str | None = None,
    replace: bool = False,
) -> ProbeKind:
    """Register probe kind ``name`` with its config dataclass (and optionally a factory,
    a one-line description and a report-figure builder); return the :class:`ProbeKind`.

    Registering a name twice is an error unless ``replace=True``. Usable as a decorator via
    :func:`probe_kind`.
    """
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise SplinescopeError(
            f"register_probe: kind name must be letters, digits, '_' or '-', got {name!r}"
        )
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise SplinescopeError(f"register_probe {name!r}: config must be a dataclass type")
    names = {f.name for f in dataclasses.fields(config)}
    if "name" not in names:
        raise SplinescopeError(
            f"register_probe {name!r}: {config.__name__} needs a 'name' field (the store's "
            "probe name)"
        )
    missing = [
        f.name
        for f in dataclasses.fields(config)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise SplinescopeError(
            f"register_probe {name!r}: every config field needs a default; {missing} have none"
        )
    F.field_types(config)  # every annotation must resolve
    if factory is None:
        for attr in ("compute", "outputs"):
            if not callable(getattr(config, attr, None)):
                raise SplinescopeError(
                    f"register_probe {name!r}: {config.__name__} has no {attr}() method; give "
                    "factory= to build the probe from the config"
                )
    paragraph = (config.__doc__ or "").strip().split("\n\n")[0]
    kind = ProbeKind(
        name=name,
        config=config,
        factory=factory or _itself,
        description=description if description is not None else " ".join(paragraph.split()),
        figure=figure,
    )
    with _LOCK:
        if name in _KINDS and not replace and _KINDS[name].config is not config:
            raise SplinescopeError(
                f"register_probe: kind {name!r} is already registered (by "
                f"{_KINDS[name].config.__module__}.{_KINDS[name].config.__qualname__}); pass "
                "replace=True to replace it"
            )
        _KINDS[name] = kind
    return kind


def probe_kind(
    name: str, *, description: str | None = None, figure: FigureBuilder | str | None = None
) -> Callable[[type], type]:
    """Class decorator: ``@probe_kind("lc")`` registers the decorated probe dataclass."""

    def decorate(cls: type) -> type:
        register_probe(name, cls, description=description, figure=figure)
        return cls

    return decorate


def _load_plugins() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _KINDS:
            continue
        try:
            obj = ep.load()
            if isinstance(obj, ProbeKind):
                if obj.name != ep.name:
                    raise SplinescopeError(
                        f"entry point {ep.name!r} gives a ProbeKind named {obj.name!r}"
                    )
                with _LOCK:
                    _KINDS[ep.name] = obj
            else:
                register_probe(ep.name, obj)
        except Exception as exc:  # a broken plugin must not break splinescope
            _SKIPPED[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
            warnings.warn(
                f"splinescope: probe plugin {ep.name!r} ({ep.value}) was not loaded: "
                f"{type(exc).__name__}: {exc}",
                stacklevel=3,
            )


def _ensure_loaded() -> None:
    global _LOADED
    with _LOCK:
        if _LOADED:
            return
        _LOADED = True
        importlib.import_module("splinescope.monitor.probes")
        _load_plugins()


def kinds() -> dict[str, ProbeKind]:
    """Every registered kind by name: the built-ins, then plugins (loaded on first call)."""
    _ensure_loaded()
    return dict(_KINDS)


def get_kind(name: str) -> ProbeKind:
    """The kind called ``name``; an unknown name raises with the registered ones."""
    registered = kinds()
    if name not in registered:
        raise SplinescopeError(
            f"probe kind {name!r} is not registered"
            + (f" (plugin not loaded: {_SKIPPED[name]})" if name in _SKIPPED else "")
            + f"; registered kinds: {', '.join(registered)}"
        )
    return registered[name]


def skipped_plugins() -> dict[str, str]:
    """Plugins of the entry-point group that failed to load: ``{kind: reason}``."""
    _ensure_loaded()
    return dict(_SKIPPED)


def kind_of(probe: Any) -> str | None:
    """The registered kind whose config class ``probe`` is an instance of, or None."""
    for name, kind in kinds().items():
        if type(probe) is kind.config:
            return name
    return None


@dataclass(frozen=True)
class ProbeTable:
    """One ``[[probes]]`` table, parsed: the kind, the instance name, the schedule text
    (``None``: the run's default schedule) and the kind's config fields as given."""

    kind: str
    name: str
    schedule: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, table: Mapping[str, Any], where: str = "probes") -> ProbeTable:
        """Check a table's keys: ``kind`` required and registered, every other key but
        ``name`` and ``schedule`` a field of the kind's config."""
        if not isinstance(table, Mapping):
            raise SplinescopeError(f"{where}: each probe is a table, got {table!r}")
        kind_name = table.get("kind")
        if not isinstance(kind_name, str):
            raise SplinescopeError(f'{where}: a probe table needs kind = "..."; got {dict(table)}')
        kind = get_kind(kind_name)
        name = table.get("name", kind_name)
        if not isinstance(name, str) or not name or "." in name or "/" in name:
            raise SplinescopeError(
                f"{where}: probe name must be a non-empty string without '.' or '/', got {name!r}"
            )
        schedule = table.get("schedule")
        if schedule is not None and not isinstance(schedule, str):
            raise SplinescopeError(
                f'{where} {name!r}: schedule must be text like "log:60", "every:100" or '
                f'"steps:0,10,100", got {schedule!r}'
            )
        options = {k: v for k, v in table.items() if k not in TABLE_KEYS}
        probe = kind.build(
            {**options, "name": name}, where=f"{where} {name!r} (kind {kind_name!r})"
        )
        del probe  # built only to validate every field now, before training starts
        return cls(kind_name, name, schedule, options)

    def build(self) -> Any:
        """The probe this table describes."""
        return get_kind(self.kind).build(
            {**self.options, "name": self.name}, where=f"probe {self.name!r} (kind {self.kind!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The table as written in a config (``kind``, ``name``, ``schedule`` first)."""
        head: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.schedule is not None:
            head["schedule"] = self.schedule
        return {**head, **F.to_plain(self.options)}


def parse_tables(tables: Sequence[Mapping[str, Any]], where: str = "probes") -> list[ProbeTable]:
    """Parse ``[[probes]]`` tables; names must be unique."""
    parsed = [ProbeTable.parse(t, f"{where}[{i}]") for i, t in enumerate(tables)]
    names = [p.name for p in parsed]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SplinescopeError(
            f"{where}: probe names must be unique; repeated: {repeated} (give each a name = ...)"
        )
    return parsed


def probe_spec(probe: Any, schedule: str) -> dict[str, Any]:
    """What the store keeps of a probe instance: kind, config, schedule, declared outputs."""
    kind = kind_of(probe)
    config = (
        {f.name: F.to_plain(getattr(probe, f.name)) for f in dataclasses.fields(probe) if f.init}
        if dataclasses.is_dataclass(probe)
        else {}
    )
    outputs = probe.outputs() if callable(getattr(probe, "outputs", None)) else Outputs()
    return {
        "kind": kind,
        "schedule": schedule,
        "config": config,
        "outputs": outputs.to_dict(),
    }
