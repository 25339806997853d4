"""Points of a sweep trained together as one population (:mod:`splinescope.train.population`).

Points whose configs differ only in ``seed``, ``init_scale``, ``weight_decay`` and ``lr``
(same MLP, data, steps, batching, probes; AdamW) form a group; each group is cut into at
most ``slots`` populations of near-equal size (so that a pool of ``--jobs N`` runs N of them
side by side), each of at most ``max_size`` members. A population is one pool task; every
member is still its own point: its own run (registered as the point's run as soon as it
exists), its own outcome, attempts and retries, its own resume from its own checkpoint.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from splinescope.sweep._worker import _STOPPING, _TRAINING, Outcome, Task
from splinescope.sweep.spec import Point

#: The most members one population trains (bounds the stacked tensors' memory).
MAX_SIZE = 32


@dataclass(frozen=True)
class PopulationTask:
    """Several points' tasks run as one population in one worker process."""

    tasks: tuple[Task, ...]

    @property
    def threads(self) -> int:
        return self.tasks[0].threads


def plan_groups(
    points: Sequence[Point], slots: int, max_size: int = MAX_SIZE
) -> dict[str, tuple[str, ...]]:
    """``{point name: the names of its population}`` for every point that shares one with
    another (points left out train alone). Order follows ``points``."""
    from splinescope.train.population import population_key

    by_key: dict[str, list[str]] = {}
    for p in points:
        key = population_key(p.config)
        if key is not None:
            by_key.setdefault(key, []).append(p.name)
    out: dict[str, tuple[str, ...]] = {}
    for names in by_key.values():
        size = min(max_size, math.ceil(len(names) / max(1, slots)))
        if size < 2:
            continue
        for i in range(0, len(names), size):
            chunk = tuple(names[i : i + size])
            if len(chunk) > 1:
                out.update({n: chunk for n in chunk})
    return out


def run_population_task(task: PopulationTask) -> list[Outcome]:
    """Train the task's points as one population; one Outcome per point, in order (a point
    that failed fails alone; an interrupt or a crash of the shared step ends them all)."""
    from splinescope.store.sweeps import set_point_run
    from splinescope.train import TrainConfig
    from splinescope.train.population import train_population

    began = time.perf_counter()
    tasks = task.tasks
    runs_dir = Path(tasks[0].runs_dir)
    started: dict[int, str] = {}

    def on_start(k: int, run_id: str) -> None:
        started[k] = run_id
        set_point_run(runs_dir, tasks[k].sweep, tasks[k].point, run_id)

    def run_of(k: int) -> str | None:
        return started.get(k, tasks[k].resume)

    try:
        _TRAINING.set()
        try:
            configs = [None if t.resume else TrainConfig.from_dict(t.config) for t in tasks]
            results = train_population(
                configs, runs_dir=runs_dir, resume=[t.resume for t in tasks], on_start=on_start
            )
        finally:
            _TRAINING.clear()
    except KeyboardInterrupt as exc:
        if _STOPPING.is_set() or getattr(exc, "signum", None) == signal.SIGTERM:
            sys.stdout.flush()
            os._exit(128 + signal.SIGTERM)  # stopped from outside: the runs are saved
        seconds = time.perf_counter() - began
        return [
            Outcome("interrupted", run_of(k), "interrupted (Ctrl-C or cancelled)", seconds=seconds)
            for k in range(len(tasks))
        ]
    except BaseException as exc:  # noqa: BLE001 - reported, never raised
        text, seconds = traceback.format_exc(), time.perf_counter() - began
        return [
            Outcome("failed", run_of(k), f"{type(exc).__name__}: {exc}", text, seconds=seconds)
            for k in range(len(tasks))
        ]
    seconds = time.perf_counter() - began
    outcomes = []
    for k, result in enumerate(results):
        if isinstance(result, BaseException):
            text = "".join(traceback.format_exception(result))
            message = f"{type(result).__name__}: {result}"
            outcomes.append(Outcome("failed", run_of(k), message, text, seconds=seconds))
        else:
            outcomes.append(Outcome("finished", result.run_id, seconds=seconds))
    return outcomes
