"""What a probe declares it emits: scalar key families (labels, units, headline values,
roles for analysis) and array key families (shape, dtype, whether the report shows them)."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScalarKey:
    """One family of scalar keys a probe emits.

    Attributes:
        pattern: the key, or a shell-style pattern (``"train/*"``, ``"class_*_total"``).
        label: what the value is, for people (axis titles, tables).
        unit: its unit (``""`` for counts and fractions; e.g. ``"nats"``).
        headline: a headline value: shown at a glance (the report's last values, the CLI
            status line).
        axis: a headline value with an axis is also drawn in the report's first figure, on
            the panel of that axis, with the others of the same axis (e.g. all accuracies).
        role: what analysis reads this value as (e.g. ``"test_accuracy"``,
            ``"train_lc"``): :mod:`splinescope.analysis.phenomena` finds its curves by role.
    """

    pattern: str
    label: str
    unit: str = ""
    headline: bool = False
    axis: str | None = None
    role: str | None = None

    def matches(self, key: str) -> bool:
        """Whether ``key`` is one of this family."""
        return fnmatch.fnmatchcase(key, self.pattern)


@dataclass(frozen=True)
class ArrayKey:
    """One family of array keys a probe emits: ``pattern``, ``label``, ``shape`` (in words,
    e.g. ``"[N, L]"``), ``dtype``; ``image`` arrays hold PNG bytes (the report shows them);
    ``report`` says whether the report loads the array at all (large per-point arrays not)."""

    pattern: str
    label: str
    shape: str
    dtype: str
    image: bool = False
    report: bool = False

    def matches(self, key: str) -> bool:
        """Whether ``key`` is one of this family."""
        return fnmatch.fnmatchcase(key, self.pattern)


@dataclass(frozen=True)
class Outputs:
    """What a probe emits: its scalar and array key families."""

    scalars: tuple[ScalarKey, ...] = ()
    arrays: tuple[ArrayKey, ...] = ()

    def scalar(self, key: str) -> ScalarKey | None:
        """The first declared family ``key`` belongs to, or None."""
        return next((s for s in self.scalars if s.matches(key)), None)

    def array(self, key: str) -> ArrayKey | None:
        """The first declared array family ``key`` belongs to, or None."""
        return next((a for a in self.arrays if a.matches(key)), None)

    def undeclared(self, scalars: Iterable[str], arrays: Iterable[str]) -> list[str]:
        """Emitted keys that no declared family holds."""
        return [k for k in scalars if self.scalar(k) is None] + [
            f"array {k}" for k in arrays if self.array(k) is None
        ]

    def unmatched(self, scalars: Iterable[str], arrays: Iterable[str]) -> list[str]:
        """Declared families that none of the emitted keys belong to."""
        scalars, arrays = list(scalars), list(arrays)
        return [s.pattern for s in self.scalars if not any(s.matches(k) for k in scalars)] + [
            f"array {a.pattern}" for a in self.arrays if not any(a.matches(k) for k in arrays)
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (stored with each run)."""
        return {
            "scalars": [dataclasses.asdict(s) for s in self.scalars],
            "arrays": [dataclasses.asdict(a) for a in self.arrays],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outputs:
        """The inverse of :meth:`to_dict`."""
        return cls(
            tuple(ScalarKey(**s) for s in data.get("scalars", ())),
            tuple(ArrayKey(**a) for a in data.get("arrays", ())),
        )
