"""When to measure: log-spaced, every k steps, or an explicit list of steps.

A schedule is a sorted set of non-negative integer steps; step ``s`` means "after ``s``
optimizer updates" (step 0 is the model at initialisation).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from splinescope.errors import SplinescopeError


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SplinescopeError(f"{name}: expected an integer ≥ {minimum}, got {value!r}")
    return int(value)


class Schedule(abc.ABC):
    """Base class: ``step in schedule`` says whether to measure at ``step``."""

    @abc.abstractmethod
    def __contains__(self, step: int) -> bool:
        """Whether to measure at ``step``."""

    def steps_until(self, max_step: int) -> tuple[int, ...]:
        """The scheduled steps in ``[0, max_step]``, ascending."""
        return tuple(s for s in range(max_step + 1) if s in self)


@dataclass(frozen=True)
class ExplicitSchedule(Schedule):
    """Measure exactly at the given steps (duplicates removed, sorted)."""

    steps: tuple[int, ...]

    def __init__(self, steps: Iterable[int]) -> None:
        checked = sorted({_check_int(s, "steps", 0) for s in steps})
        if not checked:
            raise SplinescopeError("steps: an explicit schedule needs at least one step")
        object.__setattr__(self, "steps", tuple(checked))
        object.__setattr__(self, "_set", frozenset(checked))

    def __contains__(self, step: int) -> bool:
        return step in self._set  # type: ignore[attr-defined]

    def steps_until(self, max_step: int) -> tuple[int, ...]:
        return tuple(s for s in self.steps if s <= max_step)


class LogSchedule(ExplicitSchedule):
    """``n_points`` log-spaced steps over ``1..max_step``, rounded to unique integers, plus 0.

    As in Humayun et al. (60 points over a run). Rounding merges the first few points, so the
    schedule may hold fewer than ``n_points + 1`` steps; it always holds 0, 1 and ``max_step``.
    """

    def __init__(self, n_points: int = 60, max_step: int = 1000) -> None:
        n_points = _check_int(n_points, "n_points", 2)
        max_step = _check_int(max_step, "max_step", 1)
        grid = np.rint(np.logspace(0.0, np.log10(max_step), n_points)).astype(np.int64)
        super().__init__([0, 1, max_step, *grid.tolist()])
        object.__setattr__(self, "n_points", n_points)
        object.__setattr__(self, "max_step", max_step)

    def __repr__(self) -> str:
        return f"LogSchedule(n_points={self.n_points}, max_step={self.max_step})"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EverySchedule(Schedule):
    """Measure at every ``k``-th step (0, k, 2k, ...), optionally also at ``max_step``."""

    k: int
    max_step: int | None = field(default=None)

    def __post_init__(self) -> None:
        _check_int(self.k, "k", 1)
        if self.max_step is not None:
            _check_int(self.max_step, "max_step", 0)

    def __contains__(self, step: int) -> bool:
        if self.max_step is not None and step > self.max_step:
            return False
        return step % self.k == 0 or step == self.max_step

    def steps_until(self, max_step: int) -> tuple[int, ...]:
        stop = max_step if self.max_step is None else min(max_step, self.max_step)
        steps = set(range(0, stop + 1, self.k))
        if self.max_step is not None and self.max_step <= max_step:
            steps.add(self.max_step)
        return tuple(sorted(steps))


SCHEDULE_FORMS = ('"log:N"', '"every:K"', '"steps:S1,S2,..."')


def parse_schedule(text: str, max_step: int, *, where: str = "schedule") -> Schedule:
    """A schedule from its text form, for a run of ``max_step`` steps.

    ``"log:N"``: N log-spaced steps over 1..max_step plus 0 (:class:`LogSchedule`);
    ``"every:K"``: every K-th step and the last (:class:`EverySchedule`);
    ``"steps:0,10,100"``: exactly those steps (:class:`ExplicitSchedule`).
    """
    if not isinstance(text, str) or ":" not in text:
        raise SplinescopeError(
            f"{where}: expected one of {', '.join(SCHEDULE_FORMS)}, got {text!r}"
        )
    form, _, arg = (part.strip() for part in text.partition(":"))
    try:
        if form == "log":
            return LogSchedule(int(arg), max(int(max_step), 1))
        if form == "every":
            return EverySchedule(int(arg), max_step=int(max_step))
        if form == "steps":
            return ExplicitSchedule(int(s) for s in arg.split(",") if s.strip())
    except ValueError:
        pass
    except SplinescopeError as exc:
        raise SplinescopeError(f"{where} {text!r}: {exc}") from None
    raise SplinescopeError(f"{where}: expected one of {', '.join(SCHEDULE_FORMS)}, got {text!r}")
