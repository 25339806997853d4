"""Find the units of a model that define its input-space partition.

A selection is resolved against ONE pass over the model: one ``torch.fx`` trace (activation
modules kept as leaves, the output node of every module call recorded) or, for models that
do not trace, one forward with hooks. Names never depend on what else is selected, and every
requested name is measured or rejected with an error that names it.
"""

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

_OPAQUE = "opaque torch.nn module traced as one call: partition units inside it are not seen"
_UNCALLED = "defined but never called in forward"


@dataclass(frozen=True)
class _Candidate:
    """A readable tensor: one partition-unit layer, or one call of a module (its output)."""

    name: str
    kind: str
    source: str
    thresholds: tuple[float, ...]
    when: str
    where: object  # fx node name, or (module name, call index) for hooks
    order: tuple[int, ...]  # position in execution; selections are sorted by it
    pool: object = None


#: Per module, per call: its output candidate, or why that output cannot be read.
_Outputs = dict[str, list[_Candidate | str]]


@dataclass
class _Found:
    """Everything one pass over the model found; every selection is resolved against it."""

    units: list[_Candidate]
    outputs: _Outputs
    skipped: list[tuple[str, str]]
    graph_module: fx.GraphModule | None = None
    opaque: tuple[str, ...] = ()  # modules traced as one call (their insides are not seen)


class _Tracer(fx.Tracer):
    """Keeps activation modules as leaves and records the output of every module call."""

    def __init__(self) -> None:
        super().__init__()
        self.module_calls: list[tuple[str, object]] = []

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if catalog.module_kind(m) is not None:
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward, args, kwargs):
        name = self.path_of_module(m)
        output = super().call_module(m, forward, args, kwargs)
        self.module_calls.append((name, output))
        return output


def _function_source(target: object) -> str:
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", "") or ""
    return f"F.{name}" if module.startswith("torch.nn.functional") else f"torch.{name}"


def _label(name: str, call: int) -> str:
    """A module call's stable name: ``name`` for the first call, ``name#k`` for the k-th."""
    return name if call == 0 else f"{name}#{call}"


def _module_unit(
    module: nn.Module, name: str, where: object, order: tuple[int, ...]
) -> _Candidate | None:
    """The partition-unit candidate of one activation/pool module call, if it is one."""
    kind = catalog.module_kind(module)
    source = f"nn.{type(module).__name__}"
    if kind == "argmax":
        pool = catalog.pool_with_indices(module)
        return _Candidate(
            name, kind, source, (), "pool", where, order, lambda a, k, p=pool: p(a[0])
        )
    if kind is None:
        return None
    return _Candidate(name, kind, source, catalog.module_thresholds(module), "input", where, order)


def _function_unit(node: fx.Node, order: tuple[int, ...]) -> _Candidate | str | None:
    """The unit candidate of a ``call_function``/``call_method`` node, or why it is skipped."""
    if node.op == "call_method":
        if node.target in catalog.HINGE_METHODS:
            source = f"Tensor.{node.target}"
            return _Candidate(node.name, "hinge", source, (0.0,), "input", node.name, order)
        return catalog.NON_PARTITION_METHODS.get(node.target)
    kind = catalog.function_kind(node.target)
    source = _function_source(node.target)
    if kind == "argmax":
        target = node.target
        pool = lambda a, k, t=target: catalog.function_pool_with_indices(t, a, k)  # noqa: E731
        return _Candidate(node.name, kind, source, (), "pool", node.name, order, pool)
    if kind is None:
        return catalog.function_non_partition_reason(node.target)
    thresholds = catalog.function_thresholds(node.target, dict(node.kwargs))
    return _Candidate(node.name, kind, source, thresholds, "input", node.name, order)


def _is_opaque(module: nn.Module) -> bool:
    """A non-activation leaf whose forward may hide partition units (it has submodules)."""
    return catalog.module_kind(module) is None and (
        isinstance(module, nn.RNNBase) or any(True for _ in module.children())
    )


def _fx_found(model: nn.Module) -> _Found:
    """Trace ``model`` once: its units, every module call's output node, what is skipped."""
    tracer = _Tracer()
    graph = tracer.trace(model)
    graph_module = fx.GraphModule(tracer.root, graph)
    position = {node: index for index, node in enumerate(graph.nodes)}
    units: list[_Candidate] = []
    skipped: list[tuple[str, str]] = []
    calls: Counter[str] = Counter()
    opaque: list[str] = []
    for node in graph.nodes:
        order = (position[node], 0, 0)
        if node.op == "call_module":
            module = graph_module.get_submodule(node.target)
            name = _label(node.target, calls[node.target])
            calls[node.target] += 1
            unit = _module_unit(module, name, node.name, order)
            reason = catalog.non_partition_reason(module)
            if unit is not None:
                units.append(unit)
            elif reason is not None:
                skipped.append((name, reason))
            elif _is_opaque(module) and node.target not in opaque:
                opaque.append(node.target)
                skipped.append((node.target, _OPAQUE))
        elif node.op in ("call_function", "call_method"):
            unit = _function_unit(node, order)
            if isinstance(unit, _Candidate):
                units.append(unit)
            elif unit is not None:
                skipped.append((node.name, unit))
    outputs = _fx_outputs(graph_module, tracer.module_calls, position)
    skipped += _uncalled(model, set(outputs), tuple(opaque))
    return _Found(units, outputs, skipped, graph_module, tuple(opaque))


def _fx_outputs(
    graph_module: fx.GraphModule, module_calls: list[tuple[str, object]], position: dict
) -> _Outputs:
    """Each module call's output node as an ``output`` candidate, in completion order."""
    outputs: _Outputs = {}
    for sequence, (name, value) in enumerate(module_calls):
        label = _label(name, len(outputs.get(name, ())))
        if not isinstance(value, fx.Proxy):
            reason = f"returns {type(value).__name__}, not one tensor; select a module inside it"
            outputs.setdefault(name, []).append(reason)
            continue
        source = f"nn.{type(graph_module.get_submodule(name)).__name__} output"
        order = (position[value.node], 1, sequence)
        candidate = _Candidate(label, "output", source, (0.0,), "output", value.node.name, order)
        outputs.setdefault(name, []).append(candidate)
    return outputs


def _inside(name: str, opaque: tuple[str, ...]) -> str | None:
    """The opaque module that ``name`` is part of, if any."""
    return next((o for o in opaque if name.startswith(o + ".")), None)


def _uncalled(model: nn.Module, called: set[str], opaque: tuple[str, ...]) -> list[tuple[str, str]]:
    """Activation modules that were never seen to run, each with the reason."""
    skipped = []
    for name, module in model.named_modules():
        if catalog.module_kind(module) is None or name in called:
            continue
        parent = _inside(name, opaque)
        reason = _UNCALLED if parent is None else f"inside {parent!r}, an {_OPAQUE}"
        skipped.append((name, reason))
    return skipped


def _hook_found(model: nn.Module, example: torch.Tensor, output_names: set[str]) -> _Found:
    """One forward with hooks on activation modules and on the modules named in the selection."""
    watched = {
        name: module
        for name, module in model.named_modules()
        if name and (name in output_names or catalog.module_kind(module) is not None)
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
    units: list[_Candidate] = []
    outputs: _Outputs = {}
    for sequence, (name, call) in enumerate(fired):
        module = watched[name]
        label = _label(name, call)
        unit = _module_unit(module, label, (name, call), (sequence,))
        if unit is not None:
            units.append(unit)
        if name in output_names:
            source = f"nn.{type(module).__name__} output"
            candidate = _Candidate(
                label, "output", source, (0.0,), "output", (name, call), (sequence,)
            )
            outputs.setdefault(name, []).append(candidate)
    skipped = _uncalled(model, set(calls), ())
    skipped += [
        (name, reason)
        for name, module in model.named_modules()
        if (reason := catalog.non_partition_reason(module)) is not None
    ]
    return _Found(units, outputs, skipped)


def _patterns(layers: LayerSelection) -> list[str]:
    """The user's selection as a list of names / glob patterns (validated)."""
    patterns = [layers] if isinstance(layers, str) else list(layers)
    if not patterns:
        raise SplinescopeError("layers: an empty selection; pass None for all partition units")
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise SplinescopeError(f"layers: expected names or glob patterns, got {pattern!r}")
    return patterns


def _module_name(pattern: str, module_names: set[str]) -> tuple[str, int | None] | None:
    """``"m"`` -> ``("m", None)`` (every call), ``"m#2"`` -> ``("m", 2)``; None if no module."""
    if pattern in module_names and pattern != "":
        return pattern, None
    base, sep, call = pattern.rpartition("#")
    if sep and base in module_names and base != "" and call.isdigit():
        return base, int(call)
    return None


def _resolve(pattern: str, found: _Found, module_names: set[str]) -> list[_Candidate]:
    """The candidates one pattern names: units first, else a module's output (each call)."""
    names = [c.name for c in found.units]
    matched = set(fnmatch.filter(names, pattern))
    if matched:
        return [c for c in found.units if c.name in matched]
    module = _module_name(pattern, module_names)
    if module is None:
        raise SplinescopeError(
            f"layers: {pattern!r} matches no partition unit and no module. "
            f"Partition units: {names}. Module names (their outputs are used): "
            f"{sorted(n for n in module_names if n)}"
        )
    name, call = module
    per_call = found.outputs.get(name, [])
    if not per_call:
        parent = _inside(name, found.opaque)
        where = _UNCALLED if parent is None else f"runs inside {parent!r}, an {_OPAQUE}"
        raise SplinescopeError(f"layers: module {name!r} cannot be read: {where}")
    if call is not None and call >= len(per_call):
        raise SplinescopeError(
            f"layers: {pattern!r} asks for call {call} of module {name!r}, "
            f"which runs {len(per_call)} time(s) in forward"
        )
    chosen = per_call if call is None else [per_call[call]]
    for index, candidate in enumerate(chosen):
        if isinstance(candidate, str):
            label = _label(name, index if call is None else call)
            raise SplinescopeError(f"layers: module {label!r} cannot be read: {candidate}")
    return chosen


def _select(found: _Found, layers: LayerSelection, module_names: set[str]) -> list[_Candidate]:
    """Apply the user's selection: the chosen candidates, once each, in execution order."""
    if layers is None:
        return list(found.units)
    chosen: dict[str, _Candidate] = {}
    for pattern in _patterns(layers):
        for candidate in _resolve(pattern, found, module_names):
            chosen[candidate.name] = candidate
    return sorted(chosen.values(), key=lambda c: c.order)


def _check_selection(
    layers: LayerSelection, found: _Found, module_names: set[str], got: list[str]
) -> None:
    """Assert the result holds exactly the requested names, each once; else name the gap."""
    duplicates = sorted(name for name, n in Counter(got).items() if n > 1)
    if duplicates:
        raise SplinescopeError(f"layers: names {duplicates} denote more than one unit layer")
    if layers is None:
        expected = {c.name for c in found.units}
    else:
        expected = set()
        for pattern in _patterns(layers):
            expected |= {c.name for c in _resolve(pattern, found, module_names)}
    missing, extra = sorted(expected - set(got)), sorted(set(got) - expected)
    if missing or extra:
        raise SplinescopeError(
            f"layers: the selection {layers!r} could not be honoured exactly: "
            f"missing {missing}, unrequested {extra}"
        )


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
            (``"net.*"``), or module names whose outputs' signs are used instead (every call
            of the module; ``"m#k"`` for its k-th call only). A name that is a unit's name
            selects the unit. Names may be mixed freely (a block and a unit inside it).

    Returns:
        :class:`PartitionUnits` holding exactly the requested names, in execution order;
        each layer reads the same tensor whatever else is selected. Found with ``torch.fx``
        where the model traces (functional ``F.relu``/``torch.relu``/``x.relu()`` included),
        else by module hooks (``trace_error`` says why; functional calls are then invisible).

    Raises:
        NoPartitionUnitsError: the model has no partition-defining units.
        SplinescopeError: a selection matches nothing (valid names are listed), names a
            module that never runs, runs inside an opaque module or returns no single
            tensor, or ``example_input`` does not fit the model.
    """
    if not isinstance(model, nn.Module):
        raise SplinescopeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    module_names = {name for name, _ in model.named_modules()}
    trace_error: str | None = None
    found: _Found | None = None
    try:
        found = _fx_found(model)
    except Exception as error:  # tracing fails on data-dependent control flow and more
        trace_error = f"{type(error).__name__}: {error}".splitlines()[0]
    if found is None:
        hooked = set()
        if layers is not None:
            for pattern in _patterns(layers):
                module = _module_name(pattern, module_names)
                hooked |= {module[0]} if module is not None else set()
        found = _hook_found_checked(model, example_input, hooked, argument)
    selected = _select(found, layers, module_names)
    if not selected:
        raise NoPartitionUnitsError(
            f"model {type(model).__name__} has no partition-defining units (no ReLU-family "
            "activation, smooth activation or max-pool was found"
            + (f"; tracing failed: {trace_error}" if trace_error else "")
            + "). Pass module names in `layers` to use their outputs' signs."
        )
    units = _build(model, example_input, selected, found, trace_error, argument)
    _check_selection(layers, found, module_names, units.names)
    return units


def _hook_found_checked(
    model: nn.Module, example_input: torch.Tensor, output_names: set[str], argument: str
) -> _Found:
    """:func:`_hook_found`, with a forward that fails reported against ``argument``."""
    try:
        return _hook_found(model, example_input, output_names)
    except SplinescopeError:
        raise
    except Exception as error:
        raise SplinescopeError(
            f"{argument}: shape {tuple(example_input.shape)} does not fit model "
            f"{type(model).__name__}: {type(error).__name__}: {error}"
        ) from error


def _build(
    model: nn.Module,
    example_input: torch.Tensor,
    selected: list[_Candidate],
    found: _Found,
    trace_error: str | None,
    argument: str,
) -> PartitionUnits:
    """Run the selection once on ``example_input`` to learn each layer's shape."""
    graph_module = found.graph_module
    taps: dict = {}
    for index, c in enumerate(selected):
        taps.setdefault(c.where, []).append(Tap(index, c.when, c.pool, c.name))
    runner = FxRunner(graph_module, taps) if graph_module is not None else HookRunner(model, taps)
    shapes: dict[int, tuple[int, ...]] = {}

    def record(index: int, tensor: object) -> None:
        if not isinstance(tensor, torch.Tensor):
            raise SplinescopeError(
                f"layers: {selected[index].name!r} gives {type(tensor).__name__}, not one "
                "tensor; select a module inside it"
            )
        shapes[index] = tuple(tensor.shape[1:])

    try:
        with measuring(model):
            runner.run(example_input, record)
    except SplinescopeError:
        raise
    except Exception as error:
        raise SplinescopeError(
            f"{argument}: shape {tuple(example_input.shape)} does not fit model "
            f"{type(model).__name__}: {type(error).__name__}: {error}"
        ) from error
    layers = []
    found_by = "fx" if graph_module is not None else "hook"
    for index, c in enumerate(selected):
        shape = shapes[index]
        n = int(torch.Size(shape).numel())
        if c.kind == "two_hinge":
            n *= len(c.thresholds)
        if n == 0:
            raise SplinescopeError(f"layers: {c.name!r} has no units (shape {shape})")
        layers.append(UnitLayer(c.name, c.kind, n, shape, found_by, c.source, c.thresholds))
    return PartitionUnits(
        tuple(layers), tuple(found.skipped), graph_module is not None, trace_error, runner
    )
