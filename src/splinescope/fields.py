"""Typed config fields: check and convert user values against a dataclass's annotations.

One mechanism for every config splinescope reads (a run's config, each probe's config):
a value from TOML, JSON or the command line is converted to the field's annotated type
(lists to tuples, integers to floats, ``"true"`` to ``True`` from text), then checked; an
unknown field or a value of the wrong type is a :class:`~splinescope.errors.SplinescopeError`
naming the field, what it expects, and the valid fields (as nanoGPT's configurator does).

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``dict``, ``Literal[...]``,
``tuple[T, ...]`` and ``tuple[T1, T2, ...]`` of those, and ``T | None``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

from splinescope.errors import SplinescopeError


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """``{field name: resolved annotation}`` of a dataclass (init fields only)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def describe_type(hint: Any) -> str:
    """A human phrase for an annotation: ``a number``, ``one of 'a', 'b'``, ..."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is type(None):
        return "nothing (none)"
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args if a is not type(None)) + " or none"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({describe_type(args[0])})"
        return f"a list of {len(args)} values (" + ", ".join(describe_type(a) for a in args) + ")"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    if hint is dict or origin is dict:
        return "a table of options"
    return getattr(hint, "__name__", str(hint))


def convert(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the annotated type ``hint``; SplinescopeError naming ``where`` if it is not.

    Lists become tuples, integers become floats for float fields; nothing else is coerced
    (a string is never read as a number here: see :func:`parse_text` for command-line text).
    """
    origin, args = get_origin(hint), get_args(hint)
    bad = SplinescopeError(f"{where}: expected {describe_type(hint)}, got {value!r}")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return convert(value, option, where)
            except SplinescopeError:
                continue
        raise bad
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise bad
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad
        return tuple(
            convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise bad
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise bad


def parse_text(text: str, hint: Any, where: str) -> Any:
    """Command-line text as the annotated type: ``3`` an int, ``0.1`` a float, ``a,b`` a
    list, ``true``/``false`` a bool, ``none`` None for optional fields."""
    origin, args = get_origin(hint), get_args(hint)
    raw = text.strip()
    if origin in (Union, types.UnionType):
        if raw.lower() in ("none", "null") and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return parse_text(raw, option, where)
            except SplinescopeError:
                continue
        raise SplinescopeError(f"{where}: expected {describe_type(hint)}, got {raw!r}")
    if origin is tuple:
        items = [x.strip() for x in raw.split(",") if x.strip()]
        inner = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        hints = [inner] * len(items) if inner is not None else list(args)
        if len(hints) != len(items):
            raise SplinescopeError(f"{where}: expected {describe_type(hint)}, got {raw!r}")
        return tuple(parse_text(x, h, where) for x, h in zip(items, hints, strict=True))
    try:
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is bool:
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
    except ValueError:
        raise SplinescopeError(f"{where}: expected {describe_type(hint)}, got {raw!r}") from None
    if origin is Literal:
        for option in args:
            if str(option) == raw:
                return option
        raise SplinescopeError(f"{where}: expected {describe_type(hint)}, got {raw!r}")
    if hint is dict or origin is dict:
        raise SplinescopeError(f"{where}: a table of options cannot be set from one text value")
    return convert(raw, hint, where)


def unknown_field(key: str, valid: typing.Iterable[str], what: str) -> SplinescopeError:
    """The error for a field ``key`` that ``what`` does not have, with close matches."""
    valid = list(valid)
    close = difflib.get_close_matches(key, valid, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return SplinescopeError(
        f"{what} field {key!r} is unknown{hint}; valid fields: {', '.join(valid)}"
    )


def build(cls: type, values: Mapping[str, Any], what: str) -> Any:
    """An instance of dataclass ``cls`` from ``values``: every key a field (else an error
    listing the valid ones), every value converted to and checked against its annotation."""
    types_ = field_types(cls)
    converted = {}
    for key, value in values.items():
        if key not in types_:
            raise unknown_field(key, types_, what)
        converted[key] = convert(value, types_[key], f"{what} field {key!r}")
    return cls(**converted)


def to_plain(value: Any) -> Any:
    """A JSON- and TOML-friendly copy: tuples as lists, mappings as dicts, recursively."""
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def check_finite_positive(value: float, where: str) -> None:
    """Raise unless ``value`` is a finite number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise SplinescopeError(f"{where}: must be a finite number > 0, got {value!r}")
