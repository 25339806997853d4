"""Find the units of a model that define its input-space partition."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn

from splinescope.errors import NoPartitionUnitsError, SplinescopeError
from splinescope.nn import catalog
from splinescope.nn.guard import measuring
from splinescope.nn.runner import FxRunner, HookRunner, Tap
from splinescope.nn.units import PartitionUnits, UnitLayer

LayerSelection = str | Sequence[str] | None


@dataclass(frozen=True)
class _Candidate:
    name: str
    kind: str
    source: str
    thresholds: tuple[float, ...]
    when: str
    where: object  # fx node name, or (module name, call index) for hooks
    pool: object = None


class _Tracer(fx.Tracer):
    """Keeps activation modules and the user's named modules as leaves of the graph."""

    def __init__(self, leaf_names: set[str]) -> None:
        super().__init__()
        self.leaf_names = leaf_names

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if module_qualified_name in self.leaf_names or catalog.module_kind(m) is not None:
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _function_source(target: object) -> str:
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", "") or ""
    return f"F.{name}" if module.startswith("torch.nn.functional") else f"torch.{name}"


def _fx_candidates(
    model: nn.Module, output_names: set[str]
) -> tuple[fx.GraphModule, list[_Candidate], list[tuple[str, str]]]:
    tracer = _Tracer(output_names)
    graph = tracer.trace(model)
    graph_module = fx.GraphModule(tracer.root, graph)
    candidates: list[_Candidate] = []
    skipped: list[tuple[str, str]] = []
    calls: Counter[str] = Counter()
    called: set[str] = set()
    for node in graph.nodes:
        if node.op == "call_module":
            module = graph_module.get_submodule(node.target)
            call = calls[node.target]
            calls[node.target] += 1
            called.add(node.target)
            name = node.target if call == 0 else f"{node.target}#{call}"
            source = f"nn.{type(module).__name__}"
            if node.target in output_names:
                candidates.append(
                    _Candidate(name, "output", source + " output", (0.0,), "output", node.name)
                )
                continue
            kind = catalog.module_kind(module)
            if kind == "argmax":
                pool = catalog.pool_with_indices(module)
                candidates.append(
                    _Candidate(
                        name, kind, source, (), "pool", node.name, lambda a, k, p=pool: p(a[0])
                    )
                )
            elif kind is not None:
                thresholds = catalog.module_thresholds(module)
                candidates.append(_Candidate(name, kind, source, thresholds, "input", node.name))
            elif type(module) in catalog.NON_PARTITION_MODULES:
                skipped.append((name, catalog.NON_PARTITION_MODULES[type(module)]))
        elif node.op == "call_function":
            kind = catalog.function_kind(node.target)
            if kind == "argmax":
                target = node.target
                pool = lambda a, k, t=target: catalog.function_pool_with_indices(t, a, k)  # noqa: E731
                candidates.append(
                    _Candidate(
                        node.name, kind, _function_source(target), (), "pool", node.name, pool
                    )
                )
            elif kind is not None:
                thresholds = catalog.function_thresholds(node.target, dict(node.kwargs))
                source = _function_source(node.target)
                candidates.append(
                    _Candidate(node.name, kind, source, thresholds, "input", node.name)
                )
        elif node.op == "call_method" and node.target in catalog.HINGE_METHODS:
            candidates.append(
                _Candidate(node.name, "hinge", f"Tensor.{node.target}", (0.0,), "input", node.name)
            )
    for name, module in model.named_modules():
        if catalog.module_kind(module) is not None and name not in called:
            skipped.append((name, "defined but never called in forward"))
    return graph_module, candidates, skipped


def _hook_candidates(
    model: nn.Module, example: torch.Tensor, output_names: set[str]
) -> tuple[list[_Candidate], list[tuple[str, str]]]:
    watched = {
        name: module
        for name, module in model.named_modules()
        if name in output_names or catalog.module_kind(module) is not None
    }
    fired: list[tuple[str, int]] = []
    calls: Counter[str] = Counter()
    handles = []

    def make_hook(name: str):
        def hook(module, inputs, output):
            fired.append((name, calls[name]))
            calls[name] += 1

        return hook

    try:
        for name, module in watched.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        with measuring(model):
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    candidates = []
    for name, call in fired:
        module = watched[name]
        label = name if call == 0 else f"{name}#{call}"
        source = f"nn.{type(module).__name__}"
        kind = catalog.module_kind(module)
        if name in output_names:
            candidates.append(
                _Candidate(label, "output", source + " output", (0.0,), "output", (name, call))
            )
        elif kind == "argmax":
            pool = catalog.pool_with_indices(module)
            candidates.append(
                _Candidate(
                    label, kind, source, (), "pool", (name, call), lambda a, k, p=pool: p(a[0])
                )
            )
        else:
            thresholds = catalog.module_thresholds(module)
            candidates.append(_Candidate(label, kind, source, thresholds, "input", (name, call)))
    skipped = [(name, "defined but never called in forward") for name in watched if not calls[name]]
    skipped += [
        (name, reason)
        for name, module in model.named_modules()
        for cls, reason in catalog.NON_PARTITION_MODULES.items()
        if type(module) is cls
    ]
    return candidates, skipped


def _select(
    candidates: list[_Candidate], layers: LayerSelection, module_names: set[str]
) -> tuple[list[_Candidate], set[str]]:
    """Apply the user's selection; returns the chosen units and module names to read outputs of."""
    if layers is None:
        return [c for c in candidates if c.kind != "output"], set()
    patterns = [layers] if isinstance(layers, str) else list(layers)
    if not patterns:
        raise SplinescopeError("layers: an empty selection; pass None for all partition units")
    chosen: set[str] = set()
    outputs: set[str] = set()
    names = [c.name for c in candidates if c.kind != "output"]
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise SplinescopeError(f"layers: expected names or glob patterns, got {pattern!r}")
        matched = fnmatch.filter(names, pattern)
        if matched:
            chosen.update(matched)
        elif pattern in module_names and pattern != "":
            outputs.add(pattern)
        else:
            raise SplinescopeError(
                f"layers: {pattern!r} matches no partition unit and no module. "
                f"Partition units: {names}. Module names (their outputs are used): "
                f"{sorted(n for n in module_names if n)}"
            )
    selected = [c for c in candidates if c.name in chosen and c.kind != "output"]
    return selected, outputs


def describe(
    model: nn.Module,
    example_input: torch.Tensor,
    layers: LayerSelection = None,
    *,
    argument: str = "example_input",
) -> PartitionUnits:
    """List the units of ``model`` that define its input-space partition.

    Args:
        model: any ``nn.Module`` taking one tensor.
        example_input: a batch ``[B, *input_shape]`` (B ≥ 1) used to find unit shapes.
        argument: the caller's name for ``example_input``, used in error messages.
        layers: ``None`` for every partition unit, or names / glob patterns of units
            (``"net.*"``), or module names whose outputs' signs are used instead.

    Returns:
        :class:`PartitionUnits` in execution order. Found with ``torch.fx`` where the model
        traces (functional ``F.relu``/``torch.relu``/``x.relu()`` included), else by module
        hooks (``trace_error`` says why; functional calls are then invisible).

    Raises:
        NoPartitionUnitsError: the model has no partition-defining units.
        SplinescopeError: a selection matches nothing (valid names are listed), or
            ``example_input`` does not fit the model.
    """
    if not isinstance(model, nn.Module):
        raise SplinescopeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    module_names = {name for name, _ in model.named_modules()}
    trace_error: str | None = None
    try:
        graph_module, candidates, skipped = _fx_candidates(model, set())
    except Exception as error:  # tracing fails on data-dependent control flow and more
        trace_error = f"{type(error).__name__}: {error}".splitlines()[0]
        graph_module = None
    if graph_module is None:
        candidates, skipped = _hook_candidates_checked(model, example_input, set(), argument)
    selected, outputs = _select(candidates, layers, module_names)
    if outputs:
        if graph_module is not None:
            graph_module, candidates, skipped = _fx_candidates(model, outputs)
        else:
            candidates, skipped = _hook_candidates_checked(model, example_input, outputs, argument)
        chosen = {c.name for c in selected}
        selected = [
            c
            for c in candidates
            if c.name in chosen or (c.kind == "output" and c.name.split("#")[0] in outputs)
        ]
    if not selected:
        raise NoPartitionUnitsError(
            f"model {type(model).__name__} has no partition-defining units (no ReLU-family "
            "activation, smooth activation or max-pool was found"
            + (f"; tracing failed: {trace_error}" if trace_error else "")
            + "). Pass module names in `layers` to use their outputs' signs."
        )
    return _build(model, example_input, selected, skipped, graph_module, trace_error, argument)


def _hook_candidates_checked(model, example_input, outputs, argument):
    try:
        return _hook_candidates(model, example_input, outputs)
    except SplinescopeError:
        raise
    except Exception as error:
        raise SplinescopeError(
            f"{argument}: shape {tuple(example_input.shape)} does not fit model "
            f"{type(model).__name__}: {type(error).__name__}: {error}"
        ) from error


def _build(
    model, example_input, selected, skipped, graph_module, trace_error, argument
) -> PartitionUnits:
    taps: dict = {}
    for index, c in enumerate(selected):
        taps.setdefault(c.where, []).append(Tap(index, c.when, c.pool))
    runner = FxRunner(graph_module, taps) if graph_module is not None else HookRunner(model, taps)
    shapes: dict[int, tuple[int, ...]] = {}

    def record(index: int, tensor: torch.Tensor) -> None:
        shapes[index] = tuple(tensor.shape[1:])

    try:
        with measuring(model):
            runner.run(example_input, record)
    except Exception as error:
        raise SplinescopeError(
            f"{argument}: shape {tuple(example_input.shape)} does not fit model "
            f"{type(model).__name__}: {type(error).__name__}: {error}"
        ) from error
    layers = []
    for index, c in enumerate(selected):
        shape = shapes[index]
        n = int(torch.Size(shape).numel())
        if c.kind == "two_hinge":
            n *= len(c.thresholds)
        found_by = "fx" if graph_module is not None else "hook"
        layers.append(UnitLayer(c.name, c.kind, n, shape, found_by, c.source, c.thresholds))
    return PartitionUnits(
        tuple(layers), tuple(skipped), graph_module is not None, trace_error, runner
    )
