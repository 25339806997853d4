"""A run store with synthetic runs, shared by the report tests of one module."""

from __future__ import annotations

import pytest

from report import synthetic as S


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Store with: "grok-digits" (finished, every probe, arrays, one probe error),
    "grok-digits-live" (still running, 3000 steps) and "fresh" (running, nothing logged)."""
    from splinescope.store import RunStore

    path = tmp_path_factory.mktemp("runs")
    run_id = S.store_run(path, "grok-digits")
    S.store_run(
        path,
        "grok-digits-live",
        last=3000,
        seed=1,
        status=None,
        summary={"interpolation_step": 500, "generalization_step": "not reached"},
        with_arrays=False,
    )
    store = RunStore(path)
    try:
        store.create_run("fresh", {"preset": "grok-digits", "steps": 100}, seed=2)
        store.log_error(
            run_id,
            37,
            "hessian",
            "Lanczos did not converge",
            "Traceback (most recent call last): ...",
        )
    finally:
        store.close()
    return path
