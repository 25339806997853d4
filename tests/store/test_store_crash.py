"""Crash safety: a writer killed with SIGKILL mid-run keeps every completed step and reads
back as crashed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from splinescope.store import db_path, get_run, load_arrays, load_metrics

# Logs steps as fast as it can and reports each completed step on stdout. With "batch", a
# step's rows are one transaction; with "calls", every log call commits on its own.
_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from splinescope.store import RunStore

    runs_dir, mode = sys.argv[1], sys.argv[2]
    store = RunStore(runs_dir)
    run_id = store.create_run("doomed", {"mode": mode}, seed=0)
    print(run_id, flush=True)
    for step in range(1_000_000):
        if mode == "batch":
            with store.batch():
                store.log_scalars(run_id, step, "accuracy", {"train_acc": step, "test_acc": -step})
                store.log_scalars(run_id, step, "lc", {"train_total": 2 * step})
                store.log_array(run_id, step, "lc", "train_counts", np.full((8, 3), step))
        else:
            store.log_scalars(run_id, step, "accuracy", {"train_acc": step, "test_acc": -step})
            store.log_scalars(run_id, step, "lc", {"train_total": 2 * step})
            store.log_array(run_id, step, "lc", "train_counts", np.full((8, 3), step))
        print(step, flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["batch", "calls"])
def test_sigkill_keeps_every_completed_step_and_reads_as_crashed(tmp_path, mode):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = proc.stdout.readline().strip()
        assert len(run_id) == 12, proc.stderr.read()
        completed = -1
        while completed < 40:  # let it run well into its loop, then kill it mid-write
            completed = int(proc.stdout.readline())
        assert get_run(tmp_path, run_id)["status"] == "running"
        os.kill(proc.pid, signal.SIGKILL)
        # Steps it finished between our last read and the kill were reported too.
        for line in proc.stdout:
            completed = int(line)
        # Not yet reaped: the dead child is a zombie, which must already count as dead
        # (once the kernel has finished tearing it down, a few ms after its pipes close).
        deadline = time.monotonic() + 10
        while get_run(tmp_path, run_id)["status"] != "crashed" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert get_run(tmp_path, run_id)["status"] == "crashed"
        with open(f"/proc/{proc.pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie, not reaped yet
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    run = get_run(tmp_path, run_id)
    assert run["status"] == "crashed"
    m = load_metrics(tmp_path, run_id)
    a = load_arrays(tmp_path, run_id)
    steps = sorted(set(m["step"]))
    # Every completed step is there, and at most the one in flight beyond it.
    assert steps[: completed + 1] == list(range(completed + 1))
    assert len(steps) in (completed + 1, completed + 2)
    per_step = m.groupby("step").size()
    assert (per_step.loc[:completed] == 3).all()
    assert a["step"].tolist()[: completed + 1] == list(range(completed + 1))
    for step, arr in zip(a["step"], a["array"], strict=True):
        assert arr.shape == (8, 3) and (arr == step).all()
    if mode == "batch":  # a batch is all or nothing, also when killed inside it
        assert (per_step == 3).all() and len(a) == len(steps)

    con = sqlite3.connect(db_path(tmp_path))
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
