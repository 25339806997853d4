"""RunData, summary phenomena and the formatting helpers of the report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from report import synthetic as S
from splinescope import SplinescopeError
from splinescope.report.phenomena import (
    criteria_items,
    step_marks,
    summary_items,
    summary_sentences,
)
from splinescope.store.rundata import RunData, flatten, format_number, format_time


def _run(**kw) -> RunData:
    return RunData("r1", "demo", "finished", **kw)


def test_rundata_rejects_frames_without_store_columns():
    with pytest.raises(SplinescopeError, match=r"RunData.metrics .*lacks column\(s\) \['probe'\]"):
        _run(metrics=pd.DataFrame({"step": [1], "key": ["a"], "value": [1.0]}))


def test_series_keys_last_step_and_last_value_follow_the_frame():
    metrics = S.metrics_frame(last=2000)
    run = _run(metrics=metrics.sample(frac=1.0, random_state=0))  # order must not matter
    steps, values = run.series("accuracy", "test_acc")
    ref = metrics[(metrics.probe == "accuracy") & (metrics.key == "test_acc")]
    np.testing.assert_array_equal(steps, np.sort(ref.step.to_numpy()))
    np.testing.assert_array_equal(values, ref.sort_values("step").value.to_numpy())
    assert run.last_step == 2000
    assert run.last_value("accuracy", "test_acc") == (2000, float(values[-1]))
    assert run.last_value("accuracy", "nope") is None
    assert set(run.keys("lc")) >= {"train_total", "train/fc1", "class_3_total"}
    assert run.has_metrics and not run.is_live
    empty = RunData("r2", "empty", "running")
    assert empty.last_step is None and not empty.has_metrics and empty.is_live


def test_flatten_and_format_helpers():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": {},
    }
    assert format_number(24000) == "24,000"
    assert format_number(24000.0) == "24,000"
    assert format_number(0.123456) == "0.1235"
    assert format_number("not reached") == "not reached"
    assert format_number(math.nan) == "nan"
    assert format_time(0.0) == "1970-01-01 00:00:00 UTC"
    assert format_time(None) == "unknown"


def test_summary_items_are_the_phenomena_and_criteria_the_rest():
    items = summary_items({"zeta": 1, **S.SUMMARY})
    assert [i.key for i in items][:3] == [
        "interpolation_step",
        "generalization_step",
        "grokking_gap",
    ]
    assert len(items) == 8
    unreached = {i.key for i in items if not i.reached}
    assert unreached == {"robust_generalization_step", "robustness_gap"}
    assert next(i for i in items if i.key == "grokking_gap").text == "13.33"
    criteria = criteria_items({"zeta": 1, **S.SUMMARY})
    assert [i.key for i in criteria][-1] == "zeta" and "test_plateau" in {i.key for i in criteria}
    assert {i.key for i in items} | {i.key for i in criteria} == {"zeta", *S.SUMMARY}


def test_step_marks_are_reached_steps_only_in_order():
    marks = step_marks(S.SUMMARY)
    assert [m[2] for m in marks] == [600, 1000, 1500, 2000, 8000]
    assert "grokking_gap" not in {m[0] for m in marks}


def test_summary_sentences_name_the_steps_and_what_was_not_reached():
    text = " ".join(summary_sentences(S.SUMMARY))
    assert "The training set was fitted (train accuracy ≥ 0.99) at step 600." in text
    assert (
        "Test accuracy settled at its final level (final plateau 0.93) at step 8,000, "
        "13.33× the interpolation step (grokking gap)." in text
    )
    assert (
        "Adversarial accuracy (pgd_linf_acc): robust interpolation at step 2,000; "
        "robust generalization not reached." in text
    )
    assert "peaked at step 1,000 and began to descend at step 1,500" in text
    assert summary_sentences({"generalization_step": "not reached"}) == [
        "Test accuracy has not settled: generalization not reached."
    ]
    assert summary_sentences({"grokking_gap": "undefined", "robustness_gap": 3.0}) == []
    assert summary_sentences({}) == []
