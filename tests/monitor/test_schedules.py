import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splinescope.errors import SplinescopeError
from splinescope.monitor import EverySchedule, ExplicitSchedule, LogSchedule


@given(st.integers(2, 200), st.integers(1, 10**7))
def test_log_schedule_is_sorted_unique_and_spans_the_run(n_points, max_step):
    s = LogSchedule(n_points, max_step)
    assert list(s.steps) == sorted(set(s.steps))
    assert s.steps[0] == 0 and s.steps[-1] == max_step
    assert 1 in s and max_step in s and max_step + 1 not in s
    assert len(s.steps) <= n_points + 1
    assert all(isinstance(k, int) for k in s.steps)


@given(st.integers(2, 100), st.integers(10**3, 10**7))
def test_log_schedule_matches_naive_rounding_of_a_geometric_grid(n_points, max_step):
    # Oracle: the n-point geometric sequence 1..max_step, rounded, plus 0.
    ratio = max_step ** (1 / (n_points - 1))
    naive = {0, 1, max_step} | {int(round(ratio**i)) for i in range(n_points)}
    got = set(LogSchedule(n_points, max_step).steps)
    # float rounding of ratio**i vs logspace may move a value by one step
    assert len(got ^ naive) <= 2 * max(1, len(naive) // 50)
    assert all(any(abs(g - v) <= 1 for v in naive) for g in got)


def test_log_schedule_paper_default_has_about_60_points_log_spaced():
    s = LogSchedule(60, 100_000)
    assert 50 <= len(s.steps) <= 61
    late = [k for k in s.steps if k >= 1000]
    ratios = [b / a for a, b in zip(late, late[1:])]
    expected = 100_000 ** (1 / 59)
    assert all(math.isclose(r, expected, rel_tol=0.02) for r in ratios)


@given(st.integers(1, 50), st.integers(0, 500))
def test_every_schedule_equals_modulo(k, max_step):
    s = EverySchedule(k, max_step=max_step)
    naive = [i for i in range(max_step + 1) if i % k == 0 or i == max_step]
    assert [i for i in range(max_step + 10) if i in s] == naive
    assert s.steps_until(max_step) == tuple(naive)
    assert EverySchedule(k).steps_until(max_step) == tuple(range(0, max_step + 1, k))


def test_explicit_schedule_dedupes_and_sorts():
    s = ExplicitSchedule([5, 0, 5, 17, 3])
    assert s.steps == (0, 3, 5, 17)
    assert 17 in s and 4 not in s
    assert s.steps_until(5) == (0, 3, 5)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: LogSchedule(1, 10), "n_points"),
        (lambda: LogSchedule(10, 0), "max_step"),
        (lambda: EverySchedule(0), "k"),
        (lambda: ExplicitSchedule([1, -2]), "steps"),
        (lambda: ExplicitSchedule([]), "steps"),
        (lambda: ExplicitSchedule([1.5]), "steps"),
    ],
)
def test_bad_schedules_name_the_argument(make, field):
    with pytest.raises(SplinescopeError, match=field):
        make()
