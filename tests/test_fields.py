"""Typed config fields: conversion and checks against annotations, and command-line text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splinescope import fields as F
from splinescope.errors import SplinescopeError


@dataclass(frozen=True)
class Config:
    rate: float = 0.1
    count: int = 3
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[int, float] = (1, 2.0)
    limit: int | None = None
    options: dict = None  # type: ignore[assignment]


def test_values_are_converted_to_the_annotated_type():
    c = F.build(Config, {"rate": 1, "sizes": [4, 5], "pair": [3, 4], "limit": 7}, "cfg")
    assert c.rate == 1.0 and isinstance(c.rate, float)
    assert c.sizes == (4, 5) and c.pair == (3, 4.0) and c.limit == 7


@pytest.mark.parametrize(
    "values, message",
    [
        ({"count": 2.5}, "cfg field 'count': expected an integer, got 2.5"),
        ({"count": True}, "expected an integer, got True"),
        ({"rate": "0.1"}, "expected a number, got '0.1'"),
        ({"flag": 1}, "expected true or false"),
        ({"mode": "c"}, "expected one of 'a', 'b'"),
        ({"sizes": [1, "2"]}, r"cfg field 'sizes'\[1\]: expected an integer"),
        ({"pair": [1]}, "a list of 2 values"),
        ({"limit": "x"}, "an integer or none"),
        ({"options": 3}, "a table of options"),
        ({"rte": 1.0}, r"cfg field 'rte' is unknown \(did you mean rate\?\); valid fields: rate"),
    ],
)
def test_bad_values_name_the_field_and_what_it_expects(values, message):
    with pytest.raises(SplinescopeError, match=message):
        F.build(Config, values, "cfg")


@given(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False))
def test_command_line_text_reads_back_as_the_value(n, x):
    hints = F.field_types(Config)
    assert F.parse_text(str(n), hints["count"], "w") == n
    assert F.parse_text(repr(x), hints["rate"], "w") == x
    assert F.parse_text(f"{n},{n + 1}", hints["sizes"], "w") == (n, n + 1)
    assert F.parse_text("none", hints["limit"], "w") is None
    assert F.parse_text(str(n), hints["limit"], "w") == n
    assert F.parse_text("true", hints["flag"], "w") is True
    assert F.parse_text("b", hints["mode"], "w") == "b"


@given(st.text(max_size=12))
def test_any_text_is_read_or_refused_with_the_field_named(text):
    for name, hint in F.field_types(Config).items():
        try:
            F.parse_text(text, hint, f"field {name}")
        except SplinescopeError as exc:
            assert f"field {name}" in str(exc)


def test_to_plain_turns_tuples_into_lists_recursively():
    assert F.to_plain({"a": (1, (2, 3)), "b": [{"c": (4,)}]}) == {
        "a": [1, [2, 3]],
        "b": [{"c": [4]}],
    }
