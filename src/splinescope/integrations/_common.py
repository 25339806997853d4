"""What the trainer callbacks and ``watch`` share: fixed point sets taken from a user's data
without touching the global RNG, probes from names, tables or objects (with defaults chosen
from the model and data), schedules, and the Monitor that writes the run."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from splinescope.errors import NoPartitionUnitsError, SplinescopeError
from splinescope.monitor.probe import ProbeContext, random_points
from splinescope.monitor.schedules import ExplicitSchedule, Schedule, parse_schedule
from splinescope.nn.guard import measuring, preserved_rng

Unpack = Callable[[Any], tuple[torch.Tensor, torch.Tensor]]
"""``unpack(batch) -> (inputs [B, ...], int labels [B])`` for one collated batch."""


def default_unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y, ...)`` tuples and lists, or dicts with ``x``/``input``/``inputs`` and
    ``y``/``label``/``labels``/``target``."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        x = next((batch[k] for k in ("x", "input", "inputs") if k in batch), None)
        y = next((batch[k] for k in ("y", "label", "labels", "target") if k in batch), None)
        if x is not None and y is not None:
            return x, y
        raise SplinescopeError(
            f"batch: a dict batch needs an input key (x, input, inputs) and a label key (y, "
            f"label, labels, target); it has {sorted(batch)} (pass unpack=)"
        )
    raise SplinescopeError(
        f"batch: expected (inputs, labels, ...) or a dict, got {type(batch).__name__} (pass unpack=)"
    )


def points_from_loader(
    loader: Any, n: int, *, unpack: Unpack | None = None, where: str = "loader"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` examples of a DataLoader's dataset, in dataset order, collated by the
    loader's own ``collate_fn``: the same points at every call.

    The loader is never iterated when its dataset has a length (its sampler is not touched);
    an iterable dataset is read from a fresh iterator. Either way every global RNG state is
    restored, so training draws exactly what it would have drawn without this.

    Returns:
        ``x [m, ...]`` and int64 ``y [m]``, ``m = min(n, len(dataset))``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SplinescopeError(f"{where}: number of points must be an integer ≥ 1, got {n!r}")
    unpack = unpack or default_unpack
    dataset = getattr(loader, "dataset", None)
    collate = getattr(loader, "collate_fn", None)
    if dataset is None or collate is None:
        raise SplinescopeError(f"{where}: expected a torch DataLoader, got {type(loader).__name__}")
    xs, ys = [], []
    with preserved_rng():
        try:
            length = len(dataset)
        except TypeError:
            length = None
        if length is not None:
            if length == 0:
                raise SplinescopeError(f"{where}: the dataset is empty")
            chunk = 256
            for start in range(0, min(n, length), chunk):
                items = [dataset[i] for i in range(start, min(start + chunk, n, length))]
                x, y = unpack(collate(items))
                xs.append(torch.as_tensor(x))
                ys.append(torch.as_tensor(y))
        else:
            count = 0
            for batch in loader:
                x, y = unpack(batch)
                xs.append(torch.as_tensor(x))
                ys.append(torch.as_tensor(y))
                count += xs[-1].shape[0]
                if count >= n:
                    break
            if not xs:
                raise SplinescopeError(f"{where}: the loader yielded no batch")
    x, y = torch.cat(xs)[:n], torch.cat(ys)[:n]
    if y.dtype.is_floating_point or y.ndim != 1:
        raise SplinescopeError(
            f"{where}: labels must be integer class indices [B], got {tuple(y.shape)} {y.dtype}"
        )
    return x, y.long()


def context_from_points(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    *,
    n_classes: int | None = None,
    loss_fn: Any = None,
    n_random: int = 500,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> ProbeContext:
    """A :class:`ProbeContext` from fixed point sets: random points in the training inputs'
    bounding box (a private generator), the domain spanned by both sets, ``n_classes``
    (default: largest label + 1 over both sets)."""
    if n_classes is None:
        top = int(y_train.max())
        if y_test is not None and y_test.numel():
            top = max(top, int(y_test.max()))
        n_classes = top + 1
    both = x_train if x_test is None else torch.cat([x_train.flatten(1), x_test.flatten(1)], 0)
    domain = (float(both.min()), float(both.max())) if x_train.is_floating_point() else None
    x_random = (
        random_points(x_train, n_random, seed=seed)
        if n_random > 0 and x_train.is_floating_point()
        else None
    )

    def put(t: torch.Tensor | None) -> torch.Tensor | None:
        return t if t is None or device is None else t.to(device)

    return ProbeContext(
        x_train=put(x_train),
        y_train=put(y_train),
        x_test=put(x_test),
        y_test=put(y_test),
        x_random=put(x_random),
        domain=domain,
        n_classes=int(n_classes),
        loss_fn=loss_fn,
    )


def lc_radius(x: torch.Tensor) -> float:
    """A local-complexity radius scaled to the data: 0.5 % of the mean input norm (r = 0.05
    on MNIST pixels in [0, 1], as in Humayun et al.), two significant digits."""
    norm = float(x.detach().flatten(1).double().norm(dim=1).mean())
    if not math.isfinite(norm) or norm <= 0:
        return 0.05
    r = 0.005 * norm
    return float(f"{r:.2g}")


def default_probes(
    model: nn.Module, ctx: ProbeContext, *, evaluations: bool | None = None
) -> tuple[list[Any], dict[str, str]]:
    """The probes ``probes="default"`` attaches, and each default left out with its reason.

    A classifier (logits ``[B, n_classes]`` on the training points) gets accuracy on train
    and test points; a piecewise-linear one also local complexity on train, test and random
    points at :func:`lc_radius` (200 points each); every model gets the weight norm.

    ``evaluations``: ``None`` when test points are in ``ctx`` (or there are none);
    ``True`` when they come only at a trainer's evaluations (accuracy then runs there and
    local complexity on train and random points only); ``False``: a trainer that never
    evaluates (no accuracy).
    """
    from splinescope.monitor.probes import AccuracyProbe, LocalComplexityProbe, WeightNormProbe

    probes: list[Any] = []
    skipped: dict[str, str] = {}
    classifier = False
    if ctx.x_train is not None:
        with measuring(model):
            out = model(ctx.x_train[:2])
        classifier = (
            isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] == ctx.n_classes
        )
        if not classifier:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            skipped["accuracy"] = skipped["lc"] = (
                f"the model's output {shape} is not logits [B, {ctx.n_classes}]"
            )
    if classifier:
        if evaluations is False:
            skipped["accuracy"] = "the trainer never evaluates (no validation data)"
        elif evaluations is None and ctx.x_test is None:
            skipped["accuracy"] = "no test set"
        else:
            probes.append(AccuracyProbe())
        if not ctx.x_train.is_floating_point():
            skipped["lc"] = f"inputs are {ctx.x_train.dtype}, not points of a real input space"
        else:
            try:
                from splinescope.nn import describe

                with preserved_rng():
                    describe(model, ctx.x_train[:2])
            except NoPartitionUnitsError as exc:
                skipped["lc"] = str(exc)
            else:
                splits = tuple(
                    s
                    for s, x in (
                        ("train", ctx.x_train),
                        ("test", None if evaluations is not None else ctx.x_test),
                        ("random", ctx.x_random),
                    )
                    if x is not None
                )
                probes.append(
                    LocalComplexityProbe(radius=lc_radius(ctx.x_train), n_points=200, splits=splits)
                )
    probes.append(WeightNormProbe())
    return probes, skipped


def build_probes(
    probes: Any,
    model: nn.Module,
    ctx: ProbeContext,
    *,
    max_step: int | None,
    evaluations: bool | None = None,
    where: str = "probes",
) -> tuple[list[Any], dict[str, str]]:
    """``"default"``, or a list of probe objects, ``(probe, schedule)`` pairs and
    ``[[probes]]``-style tables (``{"kind": "lc", "radius": 0.02, "schedule": "log:20"}``),
    as Monitor entries; and the defaults left out (with reasons)."""
    from splinescope.monitor.registry import ProbeTable

    if isinstance(probes, str):
        if probes != "default":
            raise SplinescopeError(
                f'{where}: expected "default" or a list of probes, got {probes!r}'
            )
        return default_probes(model, ctx, evaluations=evaluations)
    if probes is None or not isinstance(probes, Sequence):
        raise SplinescopeError(f'{where}: expected "default" or a list of probes, got {probes!r}')
    out: list[Any] = []
    for i, entry in enumerate(probes):
        if isinstance(entry, Mapping):
            table = ProbeTable.parse(entry, f"{where}[{i}]")
            probe = table.build()
            if table.schedule is not None:
                out.append((probe, schedule_from(table.schedule, max_step, f"{where}[{i}]")))
            else:
                out.append(probe)
        elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], str):
            out.append((entry[0], schedule_from(entry[1], max_step, f"{where}[{i}]")))
        else:
            out.append(entry)
    return out, {}


def open_ended_log_schedule(per_decade: int = 10, decades: int = 8) -> ExplicitSchedule:
    """Log-spaced steps without a known end: ``per_decade`` rounded points per factor of ten
    up to ``10**decades``, plus 0."""
    grid = np.unique(np.rint(np.logspace(0, decades, per_decade * decades + 1)).astype(np.int64))
    return ExplicitSchedule([0, *grid.tolist()])


def schedule_from(schedule: Any, max_step: int | None, where: str = "schedule") -> Schedule:
    """A :class:`Schedule` as given, or parsed from text (``"log:N"`` needs ``max_step``);
    ``None``: 40 log-spaced steps over ``max_step``, or 10 per decade when it is unknown."""
    if isinstance(schedule, Schedule):
        return schedule
    if schedule is None:
        return open_ended_log_schedule() if not max_step else parse_schedule("log:40", max_step)
    if isinstance(schedule, str):
        if max_step is None and not schedule.strip().startswith("steps:"):
            raise SplinescopeError(
                f"{where} {schedule!r}: the number of training steps is unknown here; give a "
                'Schedule object or "steps:..."'
            )
        return parse_schedule(schedule, max_step or 0, where=where)
    raise SplinescopeError(
        f'{where}: expected a Schedule or text like "log:40", "every:100", got {schedule!r}'
    )
