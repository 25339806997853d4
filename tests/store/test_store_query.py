"""Reading the store: resolve_run, load_runs, and exact array round trips (hypothesis)."""

from __future__ import annotations

import itertools
import os

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splinescope.errors import SplinescopeError
from splinescope.store import RunStore, get_run, load_arrays, load_metrics, load_runs, resolve_run


def test_resolve_run_by_id_prefix_and_name(tmp_path):
    store = RunStore(tmp_path)
    a = store.create_run("grok-digits", {})
    b = store.create_run("grok-digits", {})
    c = store.create_run("robust-cnn-digits", {})
    assert resolve_run(tmp_path, a) == a
    assert resolve_run(tmp_path, "grok-digits") == b  # the most recent of that name
    assert resolve_run(tmp_path, "robust-cnn-digits") == c
    # The shortest prefix that singles out each id resolves to it.
    for rid in (a, b, c):
        others = [o for o in (a, b, c) if o != rid]
        n = next(n for n in range(1, 13) if not any(o.startswith(rid[:n]) for o in others))
        assert resolve_run(tmp_path, rid[:n]) == rid
    common = os.path.commonprefix([a, b, c])
    if common:  # ids share their leading (time) digits
        with pytest.raises(SplinescopeError, match="ambiguous.*" + a):
            resolve_run(tmp_path, common)
    with pytest.raises(SplinescopeError, match="close matches: grok-digits"):
        resolve_run(tmp_path, "grok-digts")
    with pytest.raises(SplinescopeError, match="no run 'zzz'"):
        resolve_run(tmp_path, "zzz")
    # Every loader takes the same forms of reference.
    store.log_scalars(b, 3, "p", {"k": 1.0})
    assert load_metrics(tmp_path, "grok-digits")["step"].tolist() == [3]
    assert get_run(tmp_path, b[:12])["run_id"] == b


def test_load_runs_columns_and_empty_stores(tmp_path):
    cols = [
        "run_id", "name", "status", "created_at", "updated_at", "heartbeat", "last_step",
        "config", "env", "summary", "divergence",
    ]  # fmt: skip
    assert list(load_runs(tmp_path).columns) == cols  # a directory without a store
    assert len(load_runs(tmp_path)) == 0
    with pytest.raises(SplinescopeError, match="not a directory"):
        load_runs(tmp_path / "missing")
    with pytest.raises(SplinescopeError, match="has no runs"):
        resolve_run(tmp_path, "x")
    assert not (tmp_path / "splinescope.sqlite").exists()  # readers never create a store

    store = RunStore(tmp_path)
    first = store.create_run("one", {"a": 1})
    second = store.create_run(None, {})
    store.log_scalars(first, 10, "p", {"k": 1.0})
    runs = load_runs(tmp_path)
    assert list(runs.columns) == cols
    assert runs["run_id"].tolist() == [first, second]  # oldest first
    assert runs["name"].tolist() == ["one", second]  # no name: named by its id
    assert runs["last_step"].iloc[0] == 10 and runs["last_step"].isna().iloc[1]
    assert runs["config"].iloc[0] == {"a": 1}


_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.datetime64_dtypes(endianness="?"),
    hnp.byte_string_dtypes(max_len=5),
    hnp.unicode_string_dtypes(max_len=5),
)
_arrays = _dtypes.flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
)


@pytest.fixture(scope="module")
def array_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("arrays")
    store = RunStore(d)
    return store, store.create_run("arrays", {}), itertools.count()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(arr=_arrays, fortran=st.booleans())
def test_arrays_round_trip_bit_exactly(array_store, arr, fortran):
    store, rid, counter = array_store
    if fortran:
        arr = np.asfortranarray(arr)
    step = next(counter)
    store.log_array(rid, step, "prop", "x", arr)
    (out,) = load_arrays(store.runs_dir, rid, probe="prop", key="x").query("step == @step")["array"]
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert out.tobytes() == arr.tobytes()  # bit for bit, NaN payloads and -0.0 included
    assert out.flags.f_contiguous == arr.flags.f_contiguous
