"""Storage faults, each injected for real: a full disk (a file-size limit in a subprocess, and
a small tmpfs where mounting is allowed), a read-only or missing runs directory, a corrupt,
truncated or foreign store file, a WAL left behind by a killed writer, a store from a newer
splinescope. Each gives a clear error naming the path, before training where it can be
known then, and the store is never overwritten."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from reliability_helpers import child_env, run_cli, tiny_toml

from splinescope.errors import SplinescopeError
from splinescope.store import RunStore, load_metrics, load_runs
from splinescope.store._db import DB_FILENAME, SCHEMA_VERSION, db_path
from splinescope.train import TrainConfig, train

ACCURACY_KEYS = {"train_acc", "test_acc", "train_loss", "test_loss"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny(**changes) -> TrainConfig:
    base = {
        "dataset": "digits",
        "n_train": 100,
        "width": 16,
        "depth": 1,
        "batch_size": 50,
        "steps": 40,
        "schedule": "every:10",
        "probes": [{"kind": "accuracy"}],
    }
    return TrainConfig.from_dict({**base, **changes})


def _complete_steps(runs_dir: Path, run_id: str, every: int) -> list[int]:
    """The stored steps, checked to be a gap-free prefix of the schedule with every key."""
    metrics = load_metrics(runs_dir, run_id)
    steps = sorted(set(metrics["step"]))
    assert steps == list(range(0, every * len(steps), every)), steps
    for _, group in metrics.groupby("step"):
        assert set(group["key"]) == ACCURACY_KEYS
    return steps


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@pytest.mark.slow
def test_disk_full_by_a_file_size_limit_names_the_store_and_keeps_every_step(tmp_path):
    config = tiny_toml(tmp_path / "tiny.toml", steps=2000, schedule="every:10")
    runs = tmp_path / "runs"
    runs.mkdir()
    RunStore(runs).close()  # the store exists and the limit starts above its size
    limit = db_path(runs).stat().st_size + 160_000
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("_driver.py")), "run", str(config),
         "--runs-dir", str(runs), "--quiet"],
        capture_output=True, text=True, env=child_env(), timeout=300,
        preexec_fn=_limit_file_size(limit),
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out
    assert "disk is full" in out or "I/O error" in out or "cannot write" in out, out
    assert str(runs) in out.replace("\n", "")
    row = load_runs(runs).iloc[0]
    assert row["status"] == "crashed"  # its process is gone
    steps = _complete_steps(runs, row["run_id"], 10)
    assert len(steps) >= 3
    # With the space back, the run continues from its checkpoint and finishes its steps.
    resumed = run_cli("run", "--resume", row["run_id"], "--runs-dir", runs, "--quiet", timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert load_runs(runs).iloc[0]["status"] == "finished"
    assert _complete_steps(runs, row["run_id"], 10)[-1] == 2000


def _mount_tmpfs(where: Path, options: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_really_full_small_disk_names_the_path(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=400k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        with pytest.raises(SplinescopeError) as info:
            train(_tiny(steps=100_000, schedule="every:5"), runs_dir=disk / "runs")
        assert str(disk / "runs") in str(info.value)
        run_id = load_runs(disk / "runs").iloc[0]["run_id"]
        assert len(_complete_steps(disk / "runs", run_id, 5)) >= 2
    finally:
        _umount(disk)


def test_a_read_only_runs_directory_fails_before_training(tmp_path):
    runs = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount_tmpfs(runs, "ro,size=64k"):
            pytest.skip("root here, and no read-only mount possible")
    else:
        runs.mkdir()
        runs.chmod(0o555)
    try:
        with pytest.raises(SplinescopeError, match="is not a writable directory") as info:
            train(_tiny(), runs_dir=runs)
        assert str(runs) in str(info.value)
        assert not any(runs.iterdir())
    finally:
        if os.geteuid() == 0:
            _umount(runs)
        else:
            runs.chmod(0o755)


def test_a_store_on_a_read_only_mount_is_still_read(tmp_path):
    src = tmp_path / "src"
    run_id = train(_tiny(), runs_dir=src).run_id
    ro = tmp_path / "ro"
    if not _mount_tmpfs(ro, "size=4m"):
        pytest.skip("cannot mount here")
    try:
        shutil.copy(db_path(src), ro / DB_FILENAME)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        assert len(load_metrics(ro, run_id)) == 5 * 4
        with pytest.raises(SplinescopeError, match="not a writable directory"):
            train(_tiny(), runs_dir=ro)
    finally:
        _umount(ro)


def test_a_missing_runs_directory(tmp_path):
    with pytest.raises(SplinescopeError, match="not a directory"):
        load_runs(tmp_path / "nowhere")
    result = run_cli("report", "x", "--runs-dir", tmp_path / "nowhere", "-o", tmp_path / "r.html")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(tmp_path / "nowhere") in result.stdout + result.stderr
    # train creates a missing runs directory (and its parents) when it can
    assert train(_tiny(steps=10), runs_dir=tmp_path / "new" / "runs").step == 10


@pytest.fixture
def stored(tmp_path):
    """A store with one finished run of 5 steps."""
    runs = tmp_path / "runs"
    run_id = train(_tiny(), runs_dir=runs).run_id
    return runs, run_id


def _garble(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "header":
        data[:100] = os.urandom(100)
        path.write_bytes(bytes(data))
    elif how == "pages":
        page = int.from_bytes(data[16:18], "big")
        for p in range(1, len(data) // page):
            data[p * page : (p + 1) * page] = b"\xa5" * page  # every page but the first
        path.write_bytes(bytes(data))
    elif how == "text":
        path.write_text("these are not the runs you are looking for\n")


@pytest.mark.parametrize("how", ["truncated", "header", "pages", "text"])
def test_a_corrupt_store_is_named_and_never_overwritten(stored, how):
    runs, run_id = stored
    path = db_path(runs)
    _garble(path, how)
    before = _digest(path)
    for attempt in (
        lambda: load_metrics(runs, run_id),
        lambda: load_runs(runs),
        lambda: RunStore(runs),
        lambda: train(_tiny(), runs_dir=runs),
    ):
        with pytest.raises(SplinescopeError) as info:
            attempt()
        assert str(path) in str(info.value)
        assert any(w in str(info.value) for w in ("corrupt", "truncated", "not an SQLite"))
        assert _digest(path) == before
    result = run_cli("report", run_id, "--runs-dir", runs, "-o", runs / "r.html")
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert _digest(path) == before


KILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    from splinescope.store import RunStore
    store = RunStore(sys.argv[1])
    run = store.create_run("killed", {})
    for step in range(200):
        store.log_scalars(run, step, "p", {"a": float(step), "b": -float(step)})
    print(run, flush=True)
    os.kill(os.getpid(), 9)
    """
)


def test_a_wal_left_by_a_killed_writer_is_recovered(tmp_path):
    runs = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(runs)], capture_output=True, text=True
    )
    assert done.returncode == -9
    run_id = done.stdout.strip()
    wal = runs / (DB_FILENAME + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the rows are in the WAL only
    assert len(load_metrics(runs, run_id)) == 400
    # Without its shared-memory index too (as after a reboot that cleared it), in a copy.
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(db_path(runs), copy / DB_FILENAME)
    shutil.copy(wal, copy / wal.name)
    assert len(load_metrics(copy, run_id)) == 400
    assert load_runs(copy).iloc[0]["status"] == "crashed"
    with RunStore(copy) as store:  # a writer recovers the WAL and goes on
        store.log_scalars(run_id, 200, "p", {"a": 200.0, "b": -200.0})
    assert len(load_metrics(copy, run_id)) == 402


def test_a_store_of_a_newer_schema_is_refused_with_both_versions(stored):
    runs, run_id = stored
    con = sqlite3.connect(db_path(runs))
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    before = _digest(db_path(runs))
    for attempt in (
        lambda: load_runs(runs),
        lambda: RunStore(runs),
        lambda: train(_tiny(), runs_dir=runs),
    ):
        with pytest.raises(SplinescopeError) as info:
            attempt()
        text = str(info.value)
        assert f"schema version {SCHEMA_VERSION + 1}" in text and str(SCHEMA_VERSION) in text
        assert str(db_path(runs)) in text
    assert _digest(db_path(runs)) == before
