"""Load and scale: a long run's report (curves downsampled for drawing only, by the min-max
bucket rule of splinescope.report._downsample; the store keeps every value) stays small and
quick, and many processes writing into one store while reports are made lose no row and
never fail on a lock."""

from __future__ import annotations

import base64
import json
import re
import time

import numpy as np
import pytest
from workloads import concurrent_writers, file_mb, long_run

from splinescope.report import report_command
from splinescope.report._downsample import BUCKETS, MAX_DRAWN, downsample_indices
from splinescope.store import load_metrics


def _oracle(x, y, buckets):
    """The rule done slowly: per bucket of equal log-width, the argmin, argmax and first NaN."""
    pos = np.log10(x)
    edges = np.linspace(pos[0], pos[-1], buckets + 1)
    keep = {0, len(x) - 1}
    for b in range(buckets):
        last = b == buckets - 1
        inside = [
            i for i in range(len(x)) if edges[b] <= pos[i] and (pos[i] < edges[b + 1] or last)
        ]
        finite = [i for i in inside if np.isfinite(y[i])]
        if finite:
            keep.add(min(finite, key=lambda i: (y[i], i)))
            keep.add(max(finite, key=lambda i: (y[i], -i)))
        nans = [i for i in inside if not np.isfinite(y[i])]
        if nans:
            keep.add(nans[0])
    return keep


def test_downsampling_keeps_every_bucket_extreme():
    rng = np.random.default_rng(1)
    x = np.unique(np.geomspace(1, 10**6, 5000).round())
    y = rng.normal(size=len(x)).cumsum()
    y[1234] = 1e6  # a spike
    y[2000:2003] = np.nan
    keep = downsample_indices(x, y, buckets=50, max_drawn=100)
    assert set(keep.tolist()) == _oracle(x, y, 50)
    assert 1234 in keep and np.isnan(y[keep]).any()
    assert len(downsample_indices(x, y)) <= 3 * BUCKETS + 2
    assert len(downsample_indices(x[:MAX_DRAWN], y[:MAX_DRAWN])) == MAX_DRAWN  # short: all


def _trace_lengths(html: str) -> list[int]:
    """The number of x values of every trace of every figure embedded in a report."""
    out = []
    for spec in re.findall(
        r'<script type="application/json" data-plot="[^"]*">(.*?)</script>', html
    ):
        for trace in json.loads(spec)["data"]:
            x = trace.get("x")
            if isinstance(x, dict):  # plotly's typed-array encoding
                out.append(len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize)
            elif isinstance(x, list):
                out.append(len(x))
    return out


def _report_figures(runs_dir, run_id, out):
    t0 = time.perf_counter()
    path = report_command([run_id], runs_dir, out)
    return path, time.perf_counter() - t0


@pytest.mark.slow
def test_a_long_run_report_is_bounded(tmp_path):
    run_id = long_run(tmp_path, n_steps=1200, n_keys=16, n_array_steps=20)
    assert len(load_metrics(tmp_path, run_id)) == 1200 * 16  # every value stored
    path, seconds = _report_figures(tmp_path, run_id, tmp_path / "r.html")
    html = path.read_text()
    points = _trace_lengths(html)
    assert points and max(points) <= 3 * BUCKETS + 2 and max(points) > 100
    assert file_mb(path) < 6.5 and seconds < 30


@pytest.mark.soak
def test_the_2000_step_50_key_run(tmp_path):
    t0 = time.perf_counter()
    run_id = long_run(tmp_path, n_steps=2000, n_keys=50, n_array_steps=200)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert len(load_metrics(tmp_path, run_id)) == 100_000
    load_s = time.perf_counter() - t0
    path, seconds = _report_figures(tmp_path, run_id, tmp_path / "r.html")
    print(f"write {write_s:.1f} s, load_metrics {load_s:.2f} s, report {seconds:.1f} s, "
          f"{file_mb(path):.1f} MB")  # fmt: skip
    assert file_mb(path) < 8 and seconds < 60 and load_s < 10


def _check(result):
    assert result.rows_acknowledged > 0
    assert result.rows_lost == 0 and result.rows_wrong == 0
    assert result.writer_errors == [] and result.report_errors == []
    assert result.reports >= 1


@pytest.mark.slow
def test_writers_and_a_reporting_reader_at_once(tmp_path):
    _check(concurrent_writers(tmp_path, n_writers=4, seconds=4))


@pytest.mark.soak
def test_eight_writers_for_a_minute(tmp_path):
    result = concurrent_writers(tmp_path, n_writers=8, seconds=60)
    print(result)
    _check(result)
