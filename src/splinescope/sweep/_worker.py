"""What runs inside a sweep's worker process: one training run, reported as an Outcome.

Nothing here raises: a failed run comes back as an Outcome with its traceback. A worker
stopped from outside (SIGTERM: its pool shut down, or its sweep process died) marks its run
"interrupted" (data and checkpoint kept) before it exits, so that the run is resumed later.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TRAINING = threading.Event()
_STOPPING = threading.Event()


@dataclass(frozen=True)
class Task:
    """One run to do: the sweep and point, the config (a dict) or the run to resume, and
    where the run's store is (``runs_dir``; None on Ray: a local temporary store)."""

    sweep: str
    point: str
    config: dict[str, Any]
    resume: str | None
    runs_dir: str | None
    threads: int
    bundle: bytes | None = None  # on Ray: the run to resume, as a tar of a runs directory


@dataclass(frozen=True)
class Outcome:
    """How a task ended: "finished", "failed" or "interrupted"; the run's id (None if it
    never started); a message and traceback for failures; on Ray the finished runs
    directory as a tar (``bundle``); the seconds the task took in the worker."""

    outcome: str
    run_id: str | None
    message: str = ""
    traceback: str = ""
    bundle: bytes | None = None
    seconds: float = 0.0


def set_threads(threads: int) -> None:
    """Torch (and OpenMP/BLAS, where not yet started) threads of this process."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _on_sigterm(signum: int, frame: Any) -> None:
    _STOPPING.set()
    if _TRAINING.is_set():
        raise KeyboardInterrupt  # train() marks the run interrupted, then we exit
    os._exit(128 + signum)


def _watch_parent(parent: int) -> None:
    """Stop this worker (as SIGTERM does) once its sweep process is gone."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def init_pool_worker(threads: int) -> None:
    """Pool initializer: threads, the SIGTERM handler and the parent watcher."""
    set_threads(threads)
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()


def pack(runs_dir: Path) -> bytes:
    """A runs directory as an uncompressed tar (the store file and the runs' folders)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(runs_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return buf.getvalue()


def unpack(bundle: bytes, runs_dir: Path) -> None:
    """Extract what :func:`pack` made into ``runs_dir`` (plain files and folders only)."""
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        for m in members:
            if m.name.startswith(("/", "..")) or "/../" in m.name:
                raise ValueError(f"unsafe path in run bundle: {m.name!r}")
        tar.extractall(runs_dir, members=members)


def run_task(task: Task) -> Outcome:
    """Train the task's run (a new one, or ``task.resume``) and report how it ended."""
    from splinescope.train import TrainConfig, train

    began = time.perf_counter()
    started: list[str] = []
    local = None
    if task.runs_dir is None:
        local = Path(tempfile.mkdtemp(prefix="splinescope-task-"))
        if task.bundle is not None:
            unpack(task.bundle, local)
    runs_dir = Path(task.runs_dir) if task.runs_dir is not None else local

    def on_start(run_id: str) -> None:
        started.append(run_id)
        if task.runs_dir is not None:
            from splinescope.store.sweeps import set_point_run

            set_point_run(runs_dir, task.sweep, task.point, run_id)

    try:
        _TRAINING.set()
        try:
            config = None if task.resume else TrainConfig.from_dict(task.config)
            result = train(config, runs_dir=runs_dir, resume=task.resume, on_start=on_start)
        finally:
            _TRAINING.clear()
        bundle = pack(runs_dir) if local is not None else None
        return Outcome(
            "finished", result.run_id, bundle=bundle, seconds=time.perf_counter() - began
        )
    except KeyboardInterrupt as exc:
        if _STOPPING.is_set() or getattr(exc, "signum", None) == signal.SIGTERM:
            sys.stdout.flush()
            os._exit(128 + signal.SIGTERM)  # stopped from outside: the run is saved
        return Outcome(
            "interrupted",
            started[0] if started else task.resume,
            "interrupted (Ctrl-C or cancelled)",
            bundle=pack(runs_dir) if local is not None and started else None,
            seconds=time.perf_counter() - began,
        )
    except BaseException as exc:  # noqa: BLE001 - reported, never raised
        return Outcome(
            "failed",
            started[0] if started else task.resume,
            f"{type(exc).__name__}: {exc}",
            traceback.format_exc(),
            bundle=pack(runs_dir) if local is not None and started else None,
            seconds=time.perf_counter() - began,
        )
    finally:
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
