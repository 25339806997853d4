"""Named layers of a model and their outputs on a fixed point set, for representation probes.

Layers are named modules (``model.named_modules()``). The default selection is every
activation module (ReLU family, Hardtanh, smooth activations), in execution order. A name that
matches no module, a module that never runs, or one that runs more than once per forward is an
error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.probe import ProbeContext, subset
from splinescope.nn import catalog
from splinescope.nn.guard import measuring

Split = Literal["train", "test", "random"]
SPLITS: tuple[str, ...] = ("train", "test", "random")
_ACTIVATIONS = ("hinge", "two_hinge", "smooth")


def split_points(
    ctx: ProbeContext, split: str, n_points: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fixed seeded subset (the same at every step) of ``split``'s inputs and labels."""
    x = {"train": ctx.x_train, "test": ctx.x_test, "random": ctx.x_random}[split]
    y = {"train": ctx.y_train, "test": ctx.y_test, "random": None}[split]
    if x is None:
        raise SplinescopeError(f"split: the context has no {split!r} points")
    return subset(x, y, n_points, seed=seed + SPLITS.index(split))


def _batches(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise SplinescopeError(f"batch_size: expected a positive integer, got {batch_size!r}")
    return [x[i : i + batch_size] for i in range(0, x.shape[0], batch_size)]


def _run_with_hooks(
    model: nn.Module,
    x: torch.Tensor,
    modules: dict[str, nn.Module],
    batch_size: int,
    read: Callable[[nn.Module, tuple, object], object],
) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``x`` in batches; ``read(module, inputs, output)`` picks the tensor
    kept from each named module's call. Returns ``{name: [n, *shape]}`` (detached)."""
    kept: dict[str, list[torch.Tensor]] = {name: [] for name in modules}
    calls: dict[str, int] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            t = read(module, inputs, output)
            if not isinstance(t, torch.Tensor):
                raise SplinescopeError(
                    f"layers: module {name!r} gives {type(t).__name__}, not one tensor"
                )
            kept[name].append(t.detach())

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in modules.items()]
    try:
        with measuring(model):
            for batch in _batches(x, batch_size):
                calls.clear()
                model(batch)
                wrong = {name: calls.get(name, 0) for name in modules if calls.get(name, 0) != 1}
                if wrong:
                    raise SplinescopeError(
                        "layers: each named module must run exactly once per forward; "
                        + ", ".join(f"{name!r} ran {k} times" for name, k in wrong.items())
                    )
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(parts) for name, parts in kept.items()}


def resolve_layers(model: nn.Module, layers: Sequence[str] | None) -> dict[str, nn.Module]:
    """``{name: module}`` of the selected layers (the default: every activation module)."""
    named = dict(model.named_modules())
    if layers is None:
        chosen = {n: m for n, m in named.items() if catalog.module_kind(m) in _ACTIVATIONS}
        if not chosen:
            raise SplinescopeError(
                f"layers: {type(model).__name__} has no activation modules (functional "
                "activations are not modules); name the layers to read, e.g. layers = "
                f"{[n for n in named if n][:4]}"
            )
        return chosen
    if not layers:
        raise SplinescopeError("layers: expected module names or none (the default), got []")
    missing = [name for name in layers if name not in named or name == ""]
    if missing:
        raise SplinescopeError(
            f"layers: {missing} match no module of {type(model).__name__}; its named modules "
            f"include {[n for n in named if n][:20]}"
        )
    return {name: named[name] for name in layers}


def layer_names(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None) -> list[str]:
    """The selected layer names: ``layers`` as given (checked), or every activation module in
    execution order (one forward of ``x[:1]``)."""
    modules = resolve_layers(model, layers)
    if layers is not None:
        return list(modules)
    order = _execution_order(model, x[:1], modules)
    never = [name for name in modules if name not in order]
    if never:
        raise SplinescopeError(f"layers: activation module(s) {never} never run in the forward")
    return order


def layer_outputs(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None, batch_size: int
) -> dict[str, torch.Tensor]:
    """Each selected layer's output on ``x``, ``{name: [n, *shape]}``, in the order of
    :func:`layer_names`."""
    names = layer_names(model, x, layers)
    modules = resolve_layers(model, names)

    def read(module: nn.Module, inputs: tuple, output: object) -> object:
        return output[0] if isinstance(output, tuple | list) and len(output) == 1 else output

    return _run_with_hooks(model, x, modules, batch_size, read)


def _execution_order(model: nn.Module, x: torch.Tensor, modules: dict[str, nn.Module]) -> list:
    seen: list[str] = []
    handles = [
        m.register_forward_hook(lambda *a, name=name: seen.append(name))
        for name, m in modules.items()
    ]
    try:
        with measuring(model):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return list(dict.fromkeys(seen))


def classifier_input(
    model: nn.Module, x: torch.Tensor, classifier: str | None, batch_size: int
) -> tuple[str, nn.Linear, torch.Tensor]:
    """The classifier (the named ``nn.Linear``, default the last ``nn.Linear`` called in the
    forward), and its input on ``x`` (the penultimate features ``[n, d]``)."""
    named = dict(model.named_modules())
    if classifier is None:
        linears = {n: m for n, m in named.items() if isinstance(m, nn.Linear)}
        if not linears:
            raise SplinescopeError(
                f"classifier: {type(model).__name__} has no nn.Linear module; name the "
                "classifier module"
            )
        order = _execution_order(model, x[:1], linears)
        if not order:
            raise SplinescopeError("classifier: no nn.Linear module runs in the forward")
        classifier = order[-1]
    elif classifier not in named or classifier == "":
        raise SplinescopeError(
            f"classifier: {classifier!r} matches no module of {type(model).__name__}; its "
            f"named modules include {[n for n in named if n][:20]}"
        )
    module = named[classifier]
    if not isinstance(module, nn.Linear):
        raise SplinescopeError(
            f"classifier: module {classifier!r} is a {type(module).__name__}, not an nn.Linear"
        )

    def read(module: nn.Module, inputs: tuple, output: object) -> object:
        return inputs[0] if inputs else None

    feats = _run_with_hooks(model, x, {classifier: module}, batch_size, read)[classifier]
    if feats.ndim != 2:
        raise SplinescopeError(
            f"classifier: the input of {classifier!r} has shape {tuple(feats.shape[1:])} per "
            "point; neural collapse needs one feature vector per point"
        )
    return classifier, module, feats


def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's outputs on ``x`` in batches, ``[n, C]`` (under the measuring guard)."""
    with measuring(model):
        out = torch.cat([model(b) for b in _batches(x, batch_size)])
    if out.ndim != 2 or out.shape[1] < 2:
        raise SplinescopeError(
            f"model: expected logits of shape [n, C] with C >= 2, got {tuple(out.shape)}"
        )
    return out
