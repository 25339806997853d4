"""Run a model and hand each partition layer's raw tensor to a callback, layer by layer.

Two back-ends: a ``torch.fx`` graph walker (sees functional activations, frees each value at
its last use, and can start from a precomputed first affine layer) and module hooks (for
models that do not trace). Callbacks receive ``(layer_index, tensor)`` with the tensor of
shape ``[batch, *unit_shape]``: the pre-activation for activation units, the output for
named-module units and the argmax indices for max-pool units.
"""

from __future__ import annotations

import operator
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from splinescope.errors import SplinescopeError

OnUnit = Callable[[int, torch.Tensor], None]
PoolFn = Callable[[tuple, dict], tuple[torch.Tensor, torch.Tensor]]

_SHAPE_METHODS = {"view", "reshape", "flatten", "contiguous", "size"}
_SHAPE_FUNCTIONS = {torch.flatten, torch.reshape}
_AFFINE_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Modules whose output is a fresh tensor (never a view of their input) in eval mode.
_FRESH_MODULES = (*_AFFINE_MODULES, _BatchNorm)
_RELU_FUNCTIONS = (torch.relu, nn.functional.relu)


@dataclass(frozen=True)
class Tap:
    """Where a layer's units are read: ``when`` is ``"input"``, ``"output"`` or ``"pool"``;
    ``name`` is the layer's name, used when a tap is not reached."""

    index: int
    when: str
    pool: PoolFn | None = None
    name: str = ""


def _reached(on_unit: OnUnit) -> tuple[OnUnit, set[int]]:
    """Wrap ``on_unit`` so that the indices it is called with are recorded."""
    seen: set[int] = set()

    def call(index: int, tensor: torch.Tensor) -> None:
        seen.add(index)
        on_unit(index, tensor)

    return call, seen


def _check_reached(taps: dict, seen: set[int]) -> None:
    """Raise, naming them, if some taps were not reached by a run (their units would be lost)."""
    missed = [
        tap.name or f"#{tap.index}"
        for group in taps.values()
        for tap in group
        if tap.index not in seen
    ]
    if missed:
        raise SplinescopeError(
            f"layers: {missed} were not reached by this forward pass (does the model's control "
            "flow depend on its input?); their units cannot be measured on it"
        )


@dataclass(frozen=True)
class FirstAffine:
    """A model whose input reaches an affine module through shape operations only.

    Its output on ``x + r·u`` equals ``module(x) + r·linear_part(u)``, so the values at all
    vertices of a shared frame cost one pass over the centres plus one over the directions.
    """

    node: fx.Node
    module: nn.Module
    prefix: tuple[fx.Node, ...]

    def linear_part(self, u: torch.Tensor) -> torch.Tensor:
        """The module without its bias, applied to ``u`` (already reshaped by the prefix)."""
        if isinstance(self.module, nn.Linear):
            return nn.functional.linear(u, self.module.weight)
        return self.module._conv_forward(u, self.module.weight, None)


class FxRunner:
    """Walks a traced graph, calling taps; frees every intermediate value at its last use."""

    def __init__(self, graph_module: fx.GraphModule, taps: dict[str, list[Tap]]) -> None:
        self.graph_module = graph_module
        self.nodes = list(graph_module.graph.nodes)
        self.taps = {node: taps[node.name] for node in self.nodes if node.name in taps}
        unknown = sorted(set(taps) - {node.name for node in self.taps})
        if unknown:
            raise SplinescopeError(f"layers: graph nodes {unknown} are not in the traced graph")
        last_user: dict[fx.Node, fx.Node] = {}
        for node in self.nodes:
            for used in node.all_input_nodes:
                last_user[used] = node
        self.last_uses: dict[fx.Node, list[fx.Node]] = defaultdict(list)
        for used, user in last_user.items():
            self.last_uses[user].append(used)
        first_affine = _find_first_affine(graph_module, self.nodes)
        if first_affine is not None and any(node in self.taps for node in first_affine.prefix):
            first_affine = None  # a layer is read before the first affine module: no shortcut
        self.first_affine = first_affine
        tapped = [i for i, node in enumerate(self.nodes) if node in self.taps]
        self.last_tapped = max(tapped) if tapped else len(self.nodes)
        self.inplace_relus = _inplace_relus(graph_module, self.nodes, first_affine)
        self._interpreter = fx.Interpreter(graph_module, garbage_collect_values=False)

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The first affine module's input for model input ``x`` (requires ``first_affine``)."""
        assert self.first_affine is not None
        env: dict[fx.Node, object] = {}
        self._interpreter.env = env
        for node in self.first_affine.prefix:
            env[node] = x if node.op == "placeholder" else self._interpreter.run_node(node)
        return env[self.first_affine.node.args[0]]

    def first_affine_taps(self) -> set[int]:
        """Indices of the taps that read exactly the first affine module's output."""
        if self.first_affine is None:
            return set()
        node = self.first_affine.node
        out = {tap.index for tap in self.taps.get(node, ()) if tap.when == "output"}
        for user in node.users:
            if user.args and user.args[0] is node:
                out |= {tap.index for tap in self.taps.get(user, ()) if tap.when == "input"}
        return out

    def run(
        self,
        x: torch.Tensor | None,
        on_unit: OnUnit,
        injected: torch.Tensor | None = None,
        need_output: bool = True,
        inplace: bool = False,
        workspace: dict | None = None,
    ) -> object:
        """Run on ``x``; with ``injected``, start from that value of the first affine module.

        With ``need_output=False`` the walk stops at the last tapped node (returns None); a
        last node read only at its input is not run. With ``inplace=True`` a ReLU may overwrite
        its input once the taps have read it, where that input is a fresh module output (or
        ``injected``) that nothing else uses: ``on_unit`` must then not keep the tensors.
        With ``inplace`` and a ``workspace`` dict (kept by the caller between runs) and
        ``need_output=False``, ``nn.Linear`` outputs are written into buffers kept there, so
        that batch after batch reuses memory that is already mapped (no page faults).
        """
        interp = self._interpreter
        env: dict[fx.Node, object] = {}
        interp.env = env
        on_unit, seen = _reached(on_unit)
        skip = set(self.first_affine.prefix) if injected is not None else set()
        stop = len(self.nodes) if need_output else self.last_tapped + 1
        inplace = inplace and not _has_global_hooks()
        buffers = workspace if inplace and not need_output else None
        result = None
        for position, node in enumerate(self.nodes[:stop]):
            if node in skip:
                continue
            taps = self.taps.get(node, ())
            value = None
            last = not need_output and position == self.last_tapped
            if injected is not None and node is self.first_affine.node:
                value = injected
            elif node.op == "placeholder":
                value = x
            elif node.op == "output":
                result = interp.run_node(node)
                break
            else:
                for tap in taps:
                    if tap.when == "input":
                        args, _ = interp.fetch_args_kwargs_from_env(node)
                        on_unit(tap.index, args[0])
                    elif tap.when == "pool":
                        args, kwargs = interp.fetch_args_kwargs_from_env(node)
                        value, indices = tap.pool(args, kwargs)
                        on_unit(tap.index, indices)
                if last and taps and all(tap.when == "input" for tap in taps):
                    break  # read at its input, and nothing after it is needed
                if value is None and inplace and node in self.inplace_relus:
                    source = node.args[0]
                    if _unhooked(self.graph_module, source, node):
                        value = torch.relu_(env[source])
                if value is None and buffers is not None and node.op == "call_module":
                    value = _linear_into(buffers, self.graph_module, node, env)
                if value is None:
                    value = interp.run_node(node)
            for tap in taps:
                if tap.when == "output":
                    on_unit(tap.index, value)
            env[node] = value
            for dead in self.last_uses.get(node, ()):
                env.pop(dead, None)
        _check_reached(self.taps, seen)
        return result


class HookRunner:
    """Reads units through forward (pre-)hooks on modules; hooks are removed even on error."""

    first_affine = None

    def __init__(self, model: nn.Module, taps: dict[tuple[str, int], list[Tap]]) -> None:
        self.model = model
        self.taps = taps
        self.module_names = sorted({name for name, _ in taps})

    def run(
        self,
        x: torch.Tensor | None,
        on_unit: OnUnit,
        injected: torch.Tensor | None = None,
        need_output: bool = True,
        inplace: bool = False,
        workspace: dict | None = None,
    ) -> object:
        """Run the model on ``x``, calling ``on_unit`` from inside the hooks (whole forward).

        ``need_output``, ``inplace`` and ``workspace`` are accepted for the same call as
        :meth:`FxRunner.run` and have no effect (the model's own forward runs)."""
        if injected is not None:
            raise RuntimeError("HookRunner cannot start from an injected first layer")
        calls: Counter[str] = Counter()
        modules = dict(self.model.named_modules())
        handles = []
        on_unit, seen = _reached(on_unit)

        def pre_hook(name: str):
            def hook(module, inputs):
                for tap in self.taps.get((name, calls[name]), ()):
                    if tap.when == "input":
                        on_unit(tap.index, inputs[0])

            return hook

        def post_hook(name: str):
            def hook(module, inputs, output):
                call = calls[name]
                calls[name] += 1
                for tap in self.taps.get((name, call), ()):
                    if tap.when == "output":
                        on_unit(tap.index, output)
                    elif tap.when == "pool":
                        on_unit(tap.index, tap.pool(inputs, {})[1])

            return hook

        try:
            for name in self.module_names:
                module = modules[name]
                handles.append(module.register_forward_pre_hook(pre_hook(name)))
                handles.append(module.register_forward_hook(post_hook(name)))
            result = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        _check_reached(self.taps, seen)
        return result


def _is_relu(graph_module: fx.GraphModule, node: fx.Node) -> bool:
    """A plain ReLU call (module, function or method) on one input, without extra options."""
    if node.op == "call_module":
        module = graph_module.get_submodule(node.target)
        return type(module) is nn.ReLU
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS and not node.kwargs and len(node.args) == 1
    return node.op == "call_method" and node.target == "relu" and len(node.args) == 1


def _inplace_relus(
    graph_module: fx.GraphModule, nodes: list[fx.Node], first_affine: FirstAffine | None
) -> set[fx.Node]:
    """ReLU nodes that are the only user of an input produced by a fresh-output module."""
    out = set()
    for node in nodes:
        if (
            not node.args
            or not isinstance(node.args[0], fx.Node)
            or not _is_relu(graph_module, node)
        ):
            continue
        source = node.args[0]
        fresh = source.op == "call_module" and isinstance(
            graph_module.get_submodule(source.target), _FRESH_MODULES
        )
        if (fresh or (first_affine is not None and source is first_affine.node)) and list(
            source.users
        ) == [node]:
            out.add(node)
    return out


def _linear_into(
    buffers: dict, graph_module: fx.GraphModule, node: fx.Node, env: dict
) -> torch.Tensor | None:
    """An unhooked ``nn.Linear`` on a 2-D input, computed into ``buffers[node]`` (the same
    ``addmm``/``mm`` kernel as ``F.linear``); None for any other node."""
    module = graph_module.get_submodule(node.target)
    if type(module) is not nn.Linear or _has_hooks(module) or len(node.args) != 1 or node.kwargs:
        return None
    x = env.get(node.args[0])
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.requires_grad:
        return None
    weight, bias = module.weight, module.bias
    if weight.requires_grad and torch.is_grad_enabled():
        return None
    rows = x.shape[0]
    buffer = buffers.get(node)
    if (
        buffer is None
        or buffer.shape[0] < rows
        or buffer.dtype != x.dtype
        or buffer.device != x.device
    ):
        buffer = x.new_empty(rows, module.out_features)
        buffers[node] = buffer
    out = buffer[:rows]
    if bias is None:
        return torch.mm(x, weight.t(), out=out)
    return torch.addmm(bias, x, weight.t(), out=out)


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _has_global_hooks() -> bool:
    from torch.nn.modules import module as module_mod

    return bool(module_mod._global_forward_hooks or module_mod._global_forward_pre_hooks)


def _unhooked(graph_module: fx.GraphModule, *nodes: fx.Node) -> bool:
    """Whether the modules these nodes call have no hooks now (hooks come and go)."""
    return not any(
        _has_hooks(graph_module.get_submodule(node.target))
        for node in nodes
        if node.op == "call_module"
    )


def _is_shape_node(graph_module: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "placeholder":
        return True
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    if node.op == "call_function":
        if node.target is getattr:
            return node.args[1] == "shape"
        if node.target is operator.getitem:  # only indexing into a shape, never into data
            source = node.args[0]
            return isinstance(source, fx.Node) and (
                (source.op == "call_function" and source.target is getattr)
                or (source.op == "call_method" and source.target == "size")
            )
        return node.target in _SHAPE_FUNCTIONS
    if node.op == "call_module":
        return isinstance(graph_module.get_submodule(node.target), nn.Flatten)
    return False


def _find_first_affine(graph_module: fx.GraphModule, nodes: list[fx.Node]) -> FirstAffine | None:
    prefix: list[fx.Node] = []
    for node in nodes:
        if node.op == "call_module":
            module = graph_module.get_submodule(node.target)
            if isinstance(module, _AFFINE_MODULES) and len(node.args) == 1 and not node.kwargs:
                break
        if not _is_shape_node(graph_module, node):
            return None
        prefix.append(node)
    else:
        return None
    if sum(p.op == "placeholder" for p in prefix) != 1 or node.args[0] not in prefix:
        return None
    allowed = set(prefix) | {node}
    if any(user not in allowed for p in prefix for user in p.users):
        return None
    return FirstAffine(node=node, module=module, prefix=tuple(prefix))
