"""``watch``: attach splinescope to a hand-written training loop in one line.

>>> import torch, splinescope
>>> from splinescope.data import load_dataset
>>> data = load_dataset("digits", seed=0, n_train=200)
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
>>> optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
>>> import tempfile; runs = tempfile.mkdtemp()
>>> with splinescope.watch(model, data, runs_dir=runs, steps=20) as w:   # measures step 0 now
...     for step in range(1, 21):
...         loss = torch.nn.functional.cross_entropy(model(data.x_train), data.y_train)
...         optimizer.zero_grad(); loss.backward(); optimizer.step()
...         _ = w.step(step)                                              # probes when due
>>> sorted(w.latest)
['accuracy', 'lc', 'weights']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.integrations._common import (
    Unpack,
    build_probes,
    context_from_points,
    points_from_loader,
    schedule_from,
)
from splinescope.monitor.monitor import Monitor
from splinescope.monitor.probe import ProbeContext, ProbeResult


def _device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def context_for(
    data: Any,
    *,
    n_train: int,
    n_test: int,
    n_random: int,
    loss_fn: Callable | None,
    unpack: Unpack | None,
    device: torch.device,
    seed: int = 0,
) -> ProbeContext:
    """Fixed point sets from ``data``: a :class:`splinescope.data.SplitData`, a
    :class:`ProbeContext` (used as is), ``(x_train, y_train)`` or ``(x_train, y_train,
    x_test, y_test)`` tensors, a DataLoader, or ``(train_loader, test_loader)``. The first
    ``n_train`` / ``n_test`` examples are kept."""
    loss_fn = loss_fn or torch.nn.functional.cross_entropy
    if isinstance(data, ProbeContext):
        return data
    n_classes = None
    domain = None
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        x_tr, y_tr = data.x_train[:n_train], data.y_train[:n_train]
        x_te = getattr(data, "x_test", None)
        y_te = getattr(data, "y_test", None)
        if x_te is not None and y_te is not None:
            x_te, y_te = x_te[:n_test], y_te[:n_test]
        n_classes = getattr(data, "n_classes", None)
        domain = getattr(data, "domain", None)
    elif hasattr(data, "dataset") and hasattr(data, "collate_fn"):
        x_tr, y_tr = points_from_loader(data, n_train, unpack=unpack, where="data")
        x_te = y_te = None
    elif isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[0], "dataset"):
        x_tr, y_tr = points_from_loader(data[0], n_train, unpack=unpack, where="data[0]")
        x_te, y_te = points_from_loader(data[1], n_test, unpack=unpack, where="data[1]")
    elif isinstance(data, (tuple, list)) and len(data) in (2, 4):
        tensors = [torch.as_tensor(t) for t in data]
        x_tr, y_tr = tensors[0][:n_train], tensors[1][:n_train]
        x_te, y_te = (tensors[2][:n_test], tensors[3][:n_test]) if len(data) == 4 else (None, None)
    else:
        raise SplinescopeError(
            "data: expected a SplitData, a ProbeContext, (x_train, y_train[, x_test, y_test]) "
            f"tensors, a DataLoader or (train_loader, test_loader), got {type(data).__name__}"
        )
    for label, y in (("y_train", y_tr), ("y_test", y_te)):
        if y is not None and (y.dtype.is_floating_point or y.ndim != 1):
            raise SplinescopeError(
                f"data: {label} must be integer class indices [N], got {tuple(y.shape)} {y.dtype}"
            )
    context = context_from_points(
        x_tr,
        y_tr.long(),
        x_te,
        None if y_te is None else y_te.long(),
        n_classes=n_classes,
        loss_fn=loss_fn,
        n_random=n_random,
        seed=seed,
        device=device,
    )
    if domain is not None:
        from dataclasses import replace

        context = replace(context, domain=(float(domain[0]), float(domain[1])))
    return context


class Watch:
    """The handle :func:`watch` returns: call :meth:`step` after optimizer updates, then
    :meth:`close` (or use it as a context manager: ``finished`` / ``interrupted`` /
    ``crashed`` as the ``with`` block ends).

    Attributes:
        monitor: the :class:`splinescope.monitor.Monitor` underneath.
        run_id: the store's id of the run.
        skipped: defaults left out, with the reason (``{"lc": "..."}``).
        current_step: the last step passed to (or counted by) :meth:`step`.
        seconds: wall time spent in :meth:`step` (measuring and storing).
    """

    def __init__(self, monitor: Monitor, skipped: Mapping[str, str], start_step: int) -> None:
        self.monitor = monitor
        self.skipped = dict(skipped)
        self.current_step = start_step
        self.seconds = 0.0
        try:
            self.step(start_step)
        except BaseException:
            monitor.close("crashed")
            raise

    @property
    def run_id(self) -> str:
        return self.monitor.run_id

    @property
    def latest(self) -> dict[str, dict[str, float]]:
        """``{probe: {key: value}}``: the last scalars of each probe."""
        return self.monitor.latest

    def step(self, step: int | None = None) -> dict[str, ProbeResult] | None:
        """Say that training reached ``step`` (default: one more optimizer update than the
        last call) and run the probes due there; return their results, or ``None``."""
        if step is None:
            step = self.current_step + 1
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise SplinescopeError(f"step: expected an integer ≥ 0, got {step!r}")
        self.current_step = step
        began = time.perf_counter()
        try:
            return self.monitor.step(step)
        finally:
            self.seconds += time.perf_counter() - began

    def close(self, status: str = "finished") -> None:
        """End the run (``finished``, ``crashed`` or ``interrupted``); safe to call twice."""
        self.monitor.close(status)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        return self.monitor.__exit__(exc_type, exc, tb)


def watch(
    model: nn.Module,
    data: Any,
    probes: Any = "default",
    runs_dir: str | Path = "runs",
    *,
    steps: int | None = None,
    schedule: Any = None,
    loss_fn: Callable | None = None,
    name: str = "watch",
    sinks: Sequence[Any] = (),
    n_train: int = 1000,
    n_test: int = 1000,
    n_random: int = 500,
    unpack: Unpack | None = None,
    start_step: int = 0,
    config: Mapping[str, Any] | None = None,
    strict: bool = False,
) -> Watch:
    """Measure ``model`` while a hand-written loop trains it; store one run in ``runs_dir``.

    Args:
        model: the network (``model(x)`` gives logits ``[B, C]`` for classifiers).
        data: see :func:`context_for` (a SplitData, tensors, loaders); only the first
            ``n_train`` / ``n_test`` examples are measured, the same at every step.
        probes: ``"default"`` (chosen from model and data: accuracy for a classifier, local
            complexity for a piecewise-linear one, weight norm always; see ``skipped``), or
            probe objects, ``(probe, schedule)`` pairs and ``[[probes]]``-style tables.
        steps: the loop's length, for the default schedule (40 log-spaced steps); without
            it, 10 log-spaced steps per decade.
        schedule: a Schedule or text (``"log:60"``, ``"every:100"``) instead.
        loss_fn: ``loss_fn(logits, labels)`` (default: cross-entropy).
        sinks: live sinks (TensorBoard, MLflow: :mod:`splinescope.export.sinks`).
        start_step: the step the model is at now; it is measured before returning.

    Returns:
        a :class:`Watch`.
    """
    if not isinstance(model, nn.Module):
        raise SplinescopeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise SplinescopeError(f"steps: expected an integer ≥ 1, got {steps!r}")
    context = context_for(
        data,
        n_train=n_train,
        n_test=n_test,
        n_random=n_random,
        loss_fn=loss_fn,
        unpack=unpack,
        device=_device(model),
    )
    entries, skipped = build_probes(probes, model, context, max_step=steps)
    chosen = schedule_from(schedule, steps, "schedule")
    run_config = {
        "integration": "watch",
        "model": type(model).__name__,
        "steps": steps,
        "n_train": int(context.x_train.shape[0]) if context.x_train is not None else 0,
        "defaults_left_out": skipped,
        **dict(config or {}),
    }
    monitor = Monitor(
        model,
        entries,
        runs_dir,
        chosen,
        context=context,
        name=name,
        config=run_config,
        sinks=sinks,
        strict=strict,
    )
    return Watch(monitor, skipped, start_step)
