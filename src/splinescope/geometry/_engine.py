"""Exact affine propagation through a piecewise-linear network traced with ``torch.fx``.

A value inside the network is represented, on each piece of a low-dimensional domain, as an
affine function of k parameters θ (k = 1 along a segment, 2 in a plane, D at a point):
``value(θ) = coef[:, 0] + Σ_j θ_j · coef[:, j + 1]``, stored as a float64 tensor
``[P, k + 1, *shape]`` for P pieces (P = 1 when the value is the same on every piece).
Linear and affine layers act on the coefficients exactly; at each ReLU-family activation or
max-pool the *domain* splits its pieces so that every unit's state is constant on each piece,
then the activation is applied piece by piece. Domains live in :mod:`.plane`, :mod:`.segment`
and here (:class:`PointDomain`, which never splits). The op tables are in :mod:`._ops`.
"""

from __future__ import annotations

import copy
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from splinescope.errors import SplinescopeError
from splinescope.geometry._ops import (
    ACTIVATION_FUNCTIONS,
    ACTIVATION_MODULES,
    AFFINE_MODULES,
    LINEAR_FUNCTIONS,
    LINEAR_METHODS,
    LINEAR_MODULES,
    MAXPOOL_FUNCTIONS,
    MAXPOOL_MODULES,
    SMOOTH_FUNCTIONS,
    SMOOTH_MODULES,
    describe_module,
)


@dataclass
class Affine:
    """Coefficients ``[P, k + 1, *shape]`` of a value that is affine in θ on each of P pieces."""

    coef: torch.Tensor

    @property
    def pieces(self) -> int:
        return self.coef.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.coef.shape[2:])

    def flat(self) -> torch.Tensor:
        """``[P·(k+1), *shape]``: every coefficient slice as one batch element."""
        return self.coef.reshape(-1, *self.coef.shape[2:])

    def expand(self, pieces: int) -> Affine:
        if self.pieces == pieces:
            return self
        return Affine(self.coef.expand(pieces, *self.coef.shape[1:]))


@dataclass(frozen=True)
class UnitRecord:
    """One partition layer met during propagation.

    Attributes:
        name: as :func:`splinescope.nn.describe` names it (module path, ``#k`` for repeated
            calls, or the ``torch.fx`` node name of a functional call).
        kind: ``"hinge"``, ``"two_hinge"`` or ``"argmax"``.
        n_units: units (columns of the states): neurons × thresholds, or pooling windows.
        bits: bits of this layer in the binary code (argmax windows count one bit per position).
        window: positions per pooling window (argmax layers), else 1.
    """

    name: str
    kind: str
    n_units: int
    bits: int
    window: int = 1


class Domain(Protocol):
    """A set of convex pieces of θ-space that can be split where units change state."""

    @property
    def size(self) -> int: ...

    def split(self, z: torch.Tensor, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """Split by the zero sets of ``z [P, k+1, U]``; returns ``origin [P']`` (the piece each
        new piece came from) and int8 ``states [P', U]`` (sign of each unit on each new piece)."""
        ...

    def split_max(
        self, z: torch.Tensor, valid: np.ndarray, layer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Split into cells where the argmax of ``z [P, k+1, W, K]`` over K is constant
        (``valid [W, K]`` marks real window positions); returns ``origin`` and int64 winners
        ``[P', W]``."""
        ...


@dataclass
class Propagation:
    """What :func:`propagate` returns: the output's coefficients and the unit states per piece."""

    output: Affine
    records: list[UnitRecord]
    states: list[np.ndarray]
    layer_sizes: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def bits(self) -> np.ndarray:
        """bool ``[P, n_bits]``: the binary activation code of every piece (see :func:`code_bits`)."""
        return code_bits(self.records, self.states, self.output.pieces)


def code_bits(records: list[UnitRecord], states: list[np.ndarray], n_pieces: int) -> np.ndarray:
    """bool ``[P, Σ bits]``: hinge units 1 if the pre-activation is > 0 (two-hinge neurons give
    one column per threshold, threshold-major, as :func:`splinescope.nn.record_states`);
    max-pool windows one-hot over their positions. A model without partition layers gives
    ``[P, 0]`` (one empty code per piece)."""
    parts = []
    for record, state in zip(records, states, strict=True):
        if record.kind == "argmax":
            onehot = np.zeros((state.shape[0], state.shape[1], record.window), dtype=bool)
            np.put_along_axis(onehot, state[:, :, None], True, axis=2)
            parts.append(onehot.reshape(state.shape[0], -1))
        else:
            parts.append(state > 0)
    if not parts:
        return np.zeros((n_pieces, 0), dtype=bool)
    return np.concatenate(parts, axis=1)


class PointDomain:
    """P points (θ = 0 at each); states are exact signs of the constant coefficient."""

    def __init__(self, n_points: int) -> None:
        self._size = n_points
        self.on_boundary = False

    @property
    def size(self) -> int:
        return self._size

    def split(self, z: torch.Tensor, layer: str) -> tuple[np.ndarray, np.ndarray]:
        states = torch.sign(z[:, 0]).to(torch.int8).cpu().numpy()
        if z.shape[1] > 1:  # a unit at exactly 0 that varies with the input: x is on a boundary
            moving = (z[:, 1:] != 0).any(dim=1)
            self.on_boundary |= bool(((z[:, 0] == 0) & moving).any())
        return np.arange(self._size), states

    def split_max(
        self, z: torch.Tensor, valid: np.ndarray, layer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        values = z[:, 0].cpu().numpy().copy()
        values[:, ~valid] = -np.inf
        return np.arange(self._size), np.argmax(values, axis=2)


# ----------------------------------------------------------------------------------- tracing


def trace(model: nn.Module) -> fx.GraphModule:
    """A float64 CPU eval-mode copy of ``model`` traced with ``torch.fx`` (the model is untouched).

    Raises:
        SplinescopeError: the model does not trace, or uses modules/functions that are not
            piecewise-linear (all offenders are named).
    """
    if not isinstance(model, nn.Module):
        raise SplinescopeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    clone = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    try:
        graph_module = fx.symbolic_trace(clone)
    except Exception as error:
        raise SplinescopeError(
            f"model {type(model).__name__}: exact geometry needs a torch.fx-traceable model; "
            f"tracing failed: {type(error).__name__}: {str(error).splitlines()[0]}"
        ) from error
    problems = []
    for node in graph_module.graph.nodes:
        if node.op == "call_module":
            module = graph_module.get_submodule(node.target)
            if isinstance(module, SMOOTH_MODULES):
                problems.append(
                    f"{node.target!r} ({describe_module(module)}: smooth, no exact partition)"
                )
            elif isinstance(module, _BatchNorm) and module.running_mean is None:
                problems.append(f"{node.target!r} (BatchNorm without running statistics)")
            elif not isinstance(
                module, AFFINE_MODULES + LINEAR_MODULES + ACTIVATION_MODULES + MAXPOOL_MODULES
            ):
                problems.append(f"{node.target!r} ({describe_module(module)})")
            elif isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)) and module.ceil_mode:
                problems.append(f"{node.target!r} ({describe_module(module)} with ceil_mode)")
        elif node.op == "call_function" and node.target in SMOOTH_FUNCTIONS:
            name = getattr(node.target, "__name__", str(node.target))
            problems.append(f"{node.name!r} ({name}: smooth, no exact partition)")
    if problems:
        raise SplinescopeError(
            f"model {type(model).__name__}: unsupported for exact geometry: "
            + ", ".join(problems)
            + ". Supported: Linear, Conv1d/2d/3d, BatchNorm (eval), average/max pooling, "
            "Flatten/reshape, additions, concatenations, ReLU/LeakyReLU/PReLU/RReLU/Hardtanh/ReLU6."
        )
    return graph_module


# ------------------------------------------------------------------------------ propagation


class _Engine:
    def __init__(self, graph_module: fx.GraphModule, domain: Domain) -> None:
        self.gm = graph_module
        self.domain = domain
        self.env: dict[fx.Node, Any] = {}
        self.records: list[UnitRecord] = []
        self.states: list[np.ndarray] = []
        self.layer_sizes: list[int] = []
        self.skipped: list[tuple[str, str]] = []
        self.calls: Counter[str] = Counter()
        self.last_use: dict[fx.Node, fx.Node] = {}
        for node in graph_module.graph.nodes:
            for used in node.all_input_nodes:
                self.last_use[used] = node

    # -- helpers
    def _strip_batch(self, constant: torch.Tensor, like: Affine) -> torch.Tensor:
        """A constant that carries a batch dimension (size 1, or rows all equal — e.g. a buffer
        expanded to ``x.size(0)``) as one sample; a genuinely per-sample constant is refused."""
        if constant.dim() != len(like.shape) + 1:
            return constant
        if constant.shape[0] != 1 and not bool((constant == constant[:1]).all()):
            raise SplinescopeError(
                "model: combines an input-dependent value with a per-sample constant"
            )
        return constant[0]

    def _to_affine(self, value: Any, like: Affine) -> Affine:
        constant = self._strip_batch(torch.as_tensor(value, dtype=torch.float64), like)
        coef = torch.zeros((1, like.coef.shape[1], *constant.shape), dtype=torch.float64)
        coef[0, 0] = constant
        return Affine(coef)

    def _linear(self, fn: Callable[[torch.Tensor], torch.Tensor], value: Affine) -> Affine:
        """Apply a map with f(0) = 0 to every coefficient slice."""
        out = fn(value.flat())
        return Affine(out.reshape(value.pieces, value.coef.shape[1], *out.shape[1:]))

    def _add_constant(self, value: Affine, constant: Any, sign: float = 1.0) -> Affine:
        constant = self._strip_batch(torch.as_tensor(constant, dtype=torch.float64), value)
        coef = value.coef.clone()
        coef[:, 0] = coef[:, 0] + sign * constant
        return Affine(coef)

    def _pieces(self, *values: Affine) -> int:
        return max(v.pieces for v in values)

    def _gather(self, origin: np.ndarray, current: fx.Node) -> None:
        """After a split, re-index every live per-piece value and every recorded state."""
        index = torch.from_numpy(origin)
        for node, value in self.env.items():
            if isinstance(value, Affine) and value.pieces > 1:
                self.env[node] = Affine(value.coef[index])
        self.states = [s[origin] for s in self.states]

    def _name(self, node: fx.Node) -> str:
        if node.op == "call_module":
            call = self.calls[node.target]
            self.calls[node.target] += 1
            return node.target if call == 0 else f"{node.target}#{call}"
        return node.name

    def _constant_layer(self, node: fx.Node) -> None:
        """Record an activation or max-pool whose input does not depend on the model's input:
        its units are constant on the slice, so it adds no bits and no boundaries."""
        self.skipped.append(
            (self._name(node), "applied to a value that does not depend on the input")
        )

    # -- activations
    def _activation(
        self, node: fx.Node, value: Affine, kind: str, params: dict[str, Any]
    ) -> Affine:
        name = self._name(node)
        pieces = self.domain.size
        value = value.expand(pieces)
        shape = value.shape
        flat = value.coef.reshape(pieces, value.coef.shape[1], -1)
        if kind in ("hardtanh", "relu6"):
            thresholds = (params["min_val"], params["max_val"])
        else:
            thresholds = (0.0,)
        columns = []
        for t in thresholds:
            shifted = flat.clone()
            shifted[:, 0] -= t
            columns.append(shifted)
        z = torch.cat(columns, dim=2)
        origin, states = self.domain.split(z, name)
        self._gather(origin, node)
        flat = flat[torch.from_numpy(origin)]
        n = flat.shape[2]
        if kind in ("hardtanh", "relu6"):
            low = torch.from_numpy(states[:, :n] < 0)[:, None, :]
            high = torch.from_numpy(states[:, n:] > 0)[:, None, :]
            out = flat.clone()
            out[low.expand_as(out)] = 0.0
            out[high.expand_as(out)] = 0.0
            out[:, 0][low[:, 0]] = params["min_val"]
            out[:, 0][high[:, 0]] = params["max_val"]
            record = UnitRecord(name, "two_hinge", 2 * n, 2 * n)
        else:
            negative = torch.from_numpy(states < 0)[:, None, :]
            slope = params.get("slope", 0.0)
            if isinstance(slope, torch.Tensor) and slope.numel() > 1:
                # PReLU with one slope per channel (dimension 1 of the per-sample shape).
                per = torch.ones(shape, dtype=torch.float64) * slope.reshape(
                    -1, *([1] * (len(shape) - 1))
                )
                factor = torch.where(negative, per.reshape(1, 1, -1), torch.ones(()))
            else:
                slope = float(slope)
                factor = torch.where(
                    negative, torch.tensor(slope, dtype=torch.float64), torch.ones(())
                ).to(torch.float64)
            out = flat * factor
            record = UnitRecord(name, "hinge", n, n)
        self.records.append(record)
        self.states.append(states)
        self.layer_sizes.append(self.domain.size)
        return Affine(out.reshape(out.shape[0], out.shape[1], *shape))

    def _maxpool(self, node: fx.Node, value: Affine, pool: Callable, adaptive: bool) -> Affine:
        name = self._name(node)
        pieces = self.domain.size
        value = value.expand(pieces)
        shape = value.shape  # [C, *spatial]
        spatial = shape[1:]
        probe = pool(torch.zeros((1, *shape), dtype=torch.float64))
        out_spatial = tuple(probe.shape[2:])
        windows = _pool_windows(pool, spatial, out_spatial, adaptive)  # [L, K] flat positions
        valid = windows >= 0
        channels = shape[0]
        n_in = int(np.prod(spatial))
        index = np.where(valid, windows, 0)
        flat = value.coef.reshape(pieces, value.coef.shape[1], channels, n_in)
        gathered = flat[:, :, :, torch.from_numpy(index)]  # [P, K1, C, L, K]
        k = index.shape[1]
        z = gathered.reshape(pieces, value.coef.shape[1], channels * index.shape[0], k)
        full_valid = np.tile(valid, (channels, 1))
        origin, winners = self.domain.split_max(z, full_valid, name)
        self._gather(origin, node)
        z = z[torch.from_numpy(origin)]
        choice = torch.from_numpy(winners)[:, None, :, None].expand(-1, z.shape[1], -1, 1)
        out = torch.gather(z, 3, choice)[..., 0]
        self.records.append(UnitRecord(name, "argmax", z.shape[2], z.shape[2] * k, window=k))
        self.states.append(winners)
        self.layer_sizes.append(self.domain.size)
        return Affine(out.reshape(out.shape[0], out.shape[1], channels, *out_spatial))

    # -- node dispatch
    def _module(self, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        module = self.gm.get_submodule(node.target)
        if not any(isinstance(a, Affine) for a in args):
            if isinstance(module, ACTIVATION_MODULES + MAXPOOL_MODULES):
                self._constant_layer(node)
            return module(*args, **kwargs)
        (value,) = args
        if isinstance(module, nn.Linear):
            out = self._linear(lambda x: F.linear(x, module.weight), value)
            return out if module.bias is None else self._add_constant(out, module.bias)
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            out = self._linear(lambda x: module._conv_forward(x, module.weight, None), value)
            if module.bias is None:
                return out
            return self._add_constant(out, module.bias.reshape(-1, *([1] * (len(out.shape) - 1))))
        if isinstance(module, _BatchNorm):
            scale = 1.0 / torch.sqrt(module.running_var + module.eps)
            if module.weight is not None:
                scale = scale * module.weight
            shift = -module.running_mean * scale
            if module.bias is not None:
                shift = shift + module.bias
            view = (-1, *([1] * (len(value.shape) - 1)))
            out = Affine(value.coef * scale.reshape(view))
            return self._add_constant(out, shift.reshape(view))
        if isinstance(module, LINEAR_MODULES):
            return self._linear(module, value)
        if isinstance(module, nn.PReLU):
            return self._activation(node, value, "prelu", {"slope": module.weight.detach()})
        if isinstance(module, nn.RReLU):
            return self._activation(
                node, value, "leaky_relu", {"slope": (module.lower + module.upper) / 2}
            )
        if isinstance(module, nn.LeakyReLU):
            return self._activation(node, value, "leaky_relu", {"slope": module.negative_slope})
        if isinstance(module, nn.Hardtanh):
            params = {"min_val": float(module.min_val), "max_val": float(module.max_val)}
            return self._activation(node, value, "hardtanh", params)
        if isinstance(module, nn.ReLU):
            return self._activation(node, value, "relu", {})
        if isinstance(module, MAXPOOL_MODULES):
            adaptive = isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d))
            return self._maxpool(node, value, module, adaptive)
        raise SplinescopeError(f"model: module {node.target!r} ({describe_module(module)})")

    def _function(self, node: fx.Node, target: Any, args: tuple, kwargs: dict) -> Any:
        affine = [a for a in args if isinstance(a, Affine)]
        if isinstance(args[0] if args else None, (list, tuple)) and target is torch.cat:
            affine = [a for a in args[0] if isinstance(a, Affine)]
        if not affine:
            if target in ACTIVATION_FUNCTIONS or target in MAXPOOL_FUNCTIONS:
                self._constant_layer(node)
            return target(*args, **kwargs)
        label = getattr(target, "__name__", str(target))
        if target in ACTIVATION_FUNCTIONS:
            kind = ACTIVATION_FUNCTIONS[target]
            params = _function_params(kind, args, kwargs)
            return self._activation(node, args[0], kind, params)
        if target in MAXPOOL_FUNCTIONS:
            adaptive = target in (F.adaptive_max_pool1d, F.adaptive_max_pool2d)

            def pool(x, rest=args[1:], kw=kwargs):
                return target(x, *rest, **kw)

            return self._maxpool(node, args[0], pool, adaptive)
        if target in (
            operator.add,
            operator.iadd,
            torch.add,
            operator.sub,
            operator.isub,
            torch.sub,
        ):
            if "alpha" in kwargs:
                raise SplinescopeError(f"model: node {node.name!r} uses {label} with alpha")
            sign = -1.0 if target in (operator.sub, operator.isub, torch.sub) else 1.0
            a, b = args[0], args[1]
            if isinstance(a, Affine) and isinstance(b, Affine):
                p = self._pieces(a, b)
                return Affine(a.expand(p).coef + sign * b.expand(p).coef)
            if isinstance(a, Affine):
                return self._add_constant(a, b, sign)
            negated = b if sign > 0 else Affine(-b.coef)
            return self._add_constant(negated, a)
        if target in (operator.mul, torch.mul, operator.truediv, torch.div, operator.imul):
            a, b = args[0], args[1]
            if isinstance(a, Affine) and isinstance(b, Affine):
                raise SplinescopeError(
                    f"model: node {node.name!r} multiplies two input-dependent values "
                    "(not piecewise linear)"
                )
            if target in (operator.truediv, torch.div):
                if not isinstance(a, Affine):
                    raise SplinescopeError(f"model: node {node.name!r} divides by an input")
                return self._linear(lambda x: x / b, a)
            value, factor = (a, b) if isinstance(a, Affine) else (b, a)
            return self._linear(lambda x: x * factor, value)
        if target is torch.cat:
            tensors = list(args[0])
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            like = affine[0]
            values = [self._to_affine(t, like) if not isinstance(t, Affine) else t for t in tensors]
            p = self._pieces(*values)
            values = [v.expand(p) for v in values]
            ndim = len(like.shape) + 1
            if dim % ndim == 0:
                raise SplinescopeError(f"model: node {node.name!r} concatenates along the batch")
            dim = dim % ndim + 1
            return Affine(torch.cat([v.coef for v in values], dim=dim))
        if target in (F.linear,):
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            out = self._linear(lambda x: F.linear(x, weight), args[0])
            return out if bias is None else self._add_constant(out, bias)
        if target in (F.conv1d, F.conv2d, F.conv3d):
            rest = list(args[1:])
            bias = None
            if len(rest) > 1:
                bias, rest[1] = rest[1], None
            elif "bias" in kwargs:
                bias = kwargs["bias"]
            kw = {k: v for k, v in kwargs.items() if k != "bias"}
            out = self._linear(lambda x: target(x, *rest, **kw), args[0])
            if bias is None:
                return out
            return self._add_constant(out, bias.reshape(-1, *([1] * (len(out.shape) - 1))))
        if target is F.dropout or target is F.dropout1d or target is F.dropout2d:
            if kwargs.get("training", args[2] if len(args) > 2 else True):
                raise SplinescopeError(f"model: node {node.name!r} applies dropout in training")
            return args[0]
        if target is operator.getitem:
            value, index = args
            first = index[0] if isinstance(index, tuple) and index else index
            if not (isinstance(first, slice) and first == slice(None)) and first is not Ellipsis:
                raise SplinescopeError(
                    f"model: node {node.name!r} indexes the batch dimension of an input value"
                )
            return self._linear(lambda x: x[index], value)
        if target is getattr:
            return getattr(args[0].flat(), args[1])
        if target in LINEAR_FUNCTIONS:
            return self._linear(lambda x: target(x, *args[1:], **kwargs), args[0])
        raise SplinescopeError(
            f"model: node {node.name!r} calls {label}, which exact geometry does not support"
        )

    def _method(self, node: fx.Node, name: str, args: tuple, kwargs: dict) -> Any:
        self_value = args[0]
        if not isinstance(self_value, Affine):
            if any(isinstance(a, Affine) for a in args[1:]):
                functions = {"add": torch.add, "sub": torch.sub, "mul": torch.mul}
                if name in functions:
                    return self._function(node, functions[name], args, kwargs)
                raise SplinescopeError(f"model: node {node.name!r} calls .{name}() on an input")
            if name in ("relu", "relu_"):
                self._constant_layer(node)
            return getattr(self_value, name)(*args[1:], **kwargs)
        if name in ("relu", "relu_"):
            return self._activation(node, self_value, "relu", {})
        if name in ("size", "dim"):
            return getattr(self_value.flat(), name)(*args[1:], **kwargs)
        if name in LINEAR_METHODS:
            return self._linear(lambda x: getattr(x, name)(*args[1:], **kwargs), self_value)
        functions = {
            "add": torch.add,
            "add_": torch.add,
            "sub": torch.sub,
            "mul": torch.mul,
            "div": torch.div,
        }
        if name in functions:
            return self._function(node, functions[name], args, kwargs)
        raise SplinescopeError(
            f"model: node {node.name!r} calls .{name}(), which exact geometry does not support"
        )

    def run(self, inputs: Affine) -> Propagation:
        placeholders = 0
        output: Any = None
        for node in self.gm.graph.nodes:
            args = fx.node.map_arg(node.args, lambda n: self.env[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: self.env[n])
            if node.op == "placeholder":
                if placeholders == 0:
                    value: Any = inputs
                elif node.args:
                    value = node.args[0]
                else:
                    raise SplinescopeError(
                        f"model: forward takes a second required input {node.target!r}"
                    )
                placeholders += 1
            elif node.op == "get_attr":
                value = _fetch_attr(self.gm, node.target)
            elif node.op == "call_module":
                value = self._module(node, args, kwargs)
            elif node.op == "call_function":
                value = self._function(node, node.target, args, kwargs)
            elif node.op == "call_method":
                value = self._method(node, node.target, args, kwargs)
            else:  # output
                output = args[0]
                break
            self.env[node] = value
            for used in node.all_input_nodes:
                if self.last_use.get(used) is node:
                    self.env.pop(used, None)
        if isinstance(output, (tuple, list)):
            if len(output) > 1:
                self.skipped.append(
                    (
                        f"output[1:{len(output)}]",
                        f"the model returns {len(output)} values; affine maps use the first",
                    )
                )
            output = output[0] if output else None
        if not isinstance(output, Affine):
            raise SplinescopeError("model: its output does not depend on its input")
        output = output.expand(self.domain.size)
        return Propagation(output, self.records, self.states, self.layer_sizes, self.skipped)


def _fetch_attr(gm: fx.GraphModule, target: str) -> Any:
    value: Any = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _function_params(kind: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    if kind == "leaky_relu":
        return {"slope": kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)}
    if kind == "prelu":
        return {"slope": (args[1] if len(args) > 1 else kwargs["weight"]).detach()}
    if kind == "relu6":
        return {"min_val": 0.0, "max_val": 6.0}
    if kind == "hardtanh":
        return {
            "min_val": float(kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)),
            "max_val": float(kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)),
        }
    return {}


def _pool_windows(
    pool: Callable, spatial: tuple[int, ...], out_spatial: tuple[int, ...], adaptive: bool
) -> np.ndarray:
    """``[L, K]`` flat input positions of each pooling window (−1 for padding), found by
    probing the pool with one-hot inputs — exact for any kernel/stride/padding/dilation."""
    n_in = int(np.prod(spatial))
    eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, 1, *spatial)
    # The max over a window of a one-hot input is 1 exactly where the window covers that position.
    hit = pool(eye).reshape(n_in, -1) > 0.5  # [n_in, L]
    counts = hit.sum(dim=0)
    k = int(counts.max())
    windows = -np.ones((hit.shape[1], k), dtype=np.int64)
    for out_index in range(hit.shape[1]):
        positions = torch.nonzero(hit[:, out_index]).flatten().numpy()
        windows[out_index, : len(positions)] = positions
    return windows


def propagate(graph_module: fx.GraphModule, domain: Domain, inputs: Affine) -> Propagation:
    """Push the input's coefficients ``inputs`` through the traced model over ``domain``."""
    return _Engine(graph_module, domain).run(inputs)


def as_sample(x: torch.Tensor | np.ndarray | Any, argument: str) -> torch.Tensor:
    """A single input ``[*input_shape]`` (no batch dimension) as a float64 CPU tensor."""
    tensor = torch.as_tensor(x).detach().to(device="cpu", dtype=torch.float64)
    if tensor.numel() == 0:
        raise SplinescopeError(f"{argument}: empty tensor")
    if not torch.isfinite(tensor).all():
        raise SplinescopeError(f"{argument}: contains NaN or infinite values")
    return tensor


def propagate_input(
    graph_module: fx.GraphModule,
    domain: Domain,
    inputs: Affine,
    *,
    model: nn.Module,
    argument: str,
    shape: tuple[int, ...],
) -> Propagation:
    """:func:`propagate`, with any failure that is not already a SplinescopeError reported
    as the input ``argument`` (of ``shape``) not fitting ``model``."""
    try:
        return propagate(graph_module, domain, inputs)
    except SplinescopeError:
        raise
    except Exception as error:
        raise SplinescopeError(
            f"{argument}: shape {tuple(shape)} does not fit model {type(model).__name__}: "
            f"{type(error).__name__}: {error}"
        ) from error
