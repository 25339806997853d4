"""Several processes write to one runs directory at once, starting on a fresh directory."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from splinescope.store import load_arrays, load_errors, load_metrics, load_runs

N_WORKERS = 4
N_STEPS = 150
KEYS = ("a", "b", "c")


def _writer(runs_dir: str, worker: int, barrier) -> None:
    from splinescope.store import RunStore

    barrier.wait()  # all open the (not yet existing) store at the same moment
    store = RunStore(runs_dir)
    run_id = store.create_run(f"worker-{worker}", {"worker": worker}, seed=worker)
    for step in range(N_STEPS):
        store.log_scalars(
            run_id, step, "p", {k: worker * 1e6 + step + i for i, k in enumerate(KEYS)}
        )
        if step % 10 == 0:
            store.log_array(run_id, step, "p", "x", np.full(4, worker * 1000 + step))
            store.log_error(run_id, step, "flaky", f"worker {worker} step {step}", "tb")
    with store.batch():
        for step in range(N_STEPS, 2 * N_STEPS):
            store.log_scalars(run_id, step, "q", {"v": step})
    store.set_status(run_id, "finished")
    store.close()


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(N_WORKERS)
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), w, barrier)) for w in range(N_WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0] * N_WORKERS

    runs = load_runs(tmp_path)
    assert sorted(runs["name"]) == [f"worker-{w}" for w in range(N_WORKERS)]
    assert (runs["status"] == "finished").all()
    for run_id, name in zip(runs["run_id"], runs["name"], strict=True):
        w = int(name.split("-")[1])
        m = load_metrics(tmp_path, run_id)
        p = m[m["probe"] == "p"]
        assert len(p) == N_STEPS * len(KEYS)
        expected = sorted(w * 1e6 + s + i for s in range(N_STEPS) for i in range(len(KEYS)))
        assert sorted(p["value"]) == expected
        q = m[m["probe"] == "q"]
        assert q["step"].tolist() == list(range(N_STEPS, 2 * N_STEPS))
        a = load_arrays(tmp_path, run_id)
        assert a["step"].tolist() == list(range(0, N_STEPS, 10))
        assert all((x == w * 1000 + s).all() for s, x in zip(a["step"], a["array"], strict=True))
        e = load_errors(tmp_path, run_id)
        assert e["message"].tolist() == [f"worker {w} step {s}" for s in range(0, N_STEPS, 10)]
