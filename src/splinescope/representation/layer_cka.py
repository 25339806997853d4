"""Layer x layer (and checkpoint x checkpoint) minibatch CKA matrices from named modules.

Each batch runs every distinct model once; a forward hook on each named module turns that
layer's output into its U-centred ``b x b`` Gram at once and drops the features, so memory is
``(rows + cols) * b^2`` float64 numbers, independent of the number of points. All pairs of a
batch are then one matrix product of the flattened Grams.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.nn.guard import measuring
from splinescope.representation._checks import CONV_MODES, choice
from splinescope.representation.cka import CLIPPING, KERNELS, MINIBATCH_NAME, batch_u_gram


@dataclass(frozen=True)
class CKAMatrix:
    """Minibatch CKA between every row layer and every column layer, ``values [rows, cols]``.

    ``row_labels``/``col_labels`` are the layer names, prefixed by the model index
    (``"1:conv2"``) when several models (checkpoints) are given. ``values`` is clipped to
    [0, 1]; ``raw_values`` is before clipping; ``n_clipped`` counts the entries that differ.
    """

    values: torch.Tensor
    raw_values: torch.Tensor
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    n_batches: int
    n_points: int
    n_clipped: int
    kernel: str
    estimator: str
    variant: str
    conv: str
    clipping: str = CLIPPING


def _as_models(name: str, models: nn.Module | Sequence[nn.Module]) -> list[nn.Module]:
    if isinstance(models, nn.Module):
        return [models]
    out = list(models)
    if not out or not all(isinstance(m, nn.Module) for m in out):
        raise SplinescopeError(f"{name}: expected an nn.Module or a non-empty sequence of them")
    return out


def _resolve(name: str, model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    if isinstance(layers, str) or not layers:
        raise SplinescopeError(f"{name}: expected a non-empty list of module names, got {layers!r}")
    modules = dict(model.named_modules())
    missing = [layer for layer in layers if layer not in modules]
    if missing:
        known = [k for k in modules if k][:20]
        raise SplinescopeError(
            f"{name}: no module named {missing} in {type(model).__name__}; "
            f"named modules include {known}"
        )
    return {layer: modules[layer] for layer in layers}


def _device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _inputs(item: object, b: int) -> torch.Tensor:
    if isinstance(item, tuple | list) and item:
        item = item[0]
    if not isinstance(item, torch.Tensor):
        raise SplinescopeError(
            f"loader: batch {b} is a {type(item).__name__}; expected a tensor or (inputs, ...)"
        )
    return item


def cka_matrix(
    model_a: nn.Module | Sequence[nn.Module],
    model_b: nn.Module | Sequence[nn.Module],
    loader: Iterable,
    layers_a: Sequence[str],
    layers_b: Sequence[str],
    *,
    kernel: str = "linear",
    sigma: float | None = None,
    conv: str = "flatten",
) -> CKAMatrix:
    """Minibatch CKA of each layer in ``layers_a`` of ``model_a`` vs each of ``layers_b``.

    ``model_a``/``model_b`` may each be one model or a sequence of checkpoints (rows are then
    every checkpoint's ``layers_a``). ``loader`` yields input batches ``[b, ...]`` (or tuples
    whose first element is the input), each with ``b >= 4``. Models are measured under
    :func:`splinescope.nn.guard.measuring` (eval mode, no grad; modes and RNG restored) and
    every hook is removed afterwards, even on error.
    """
    choice("kernel", kernel, KERNELS)
    choice("conv", conv, CONV_MODES)
    models_a, models_b = _as_models("model_a", model_a), _as_models("model_b", model_b)
    layers_a, layers_b = list(layers_a), list(layers_b)
    many_a, many_b = len(models_a) > 1, len(models_b) > 1
    rows = [(m, layer) for m in models_a for layer in layers_a]
    cols = [(m, layer) for m in models_b for layer in layers_b]
    # every (model, layer) read once per batch, even when it is both a row and a column
    slots: dict[tuple[int, str], int] = {}
    by_model: dict[int, tuple[nn.Module, dict[str, nn.Module]]] = {}
    for side, models, layers in (
        ("layers_a", models_a, layers_a),
        ("layers_b", models_b, layers_b),
    ):
        for m in models:
            mods = _resolve(side, m, layers)
            entry = by_model.setdefault(id(m), (m, {}))
            entry[1].update(mods)
            for layer in layers:
                slots.setdefault((id(m), layer), len(slots))
    row_idx = torch.tensor([slots[(id(m), layer)] for m, layer in rows])
    col_idx = torch.tensor([slots[(id(m), layer)] for m, layer in cols])

    grams: list[torch.Tensor | None] = [None] * len(slots)
    batch_no = [0]

    def hook_for(slot: int, label: str):
        def hook(module: nn.Module, inputs: tuple, output: object) -> None:
            out = output[0] if isinstance(output, tuple | list) else output
            if not isinstance(out, torch.Tensor):
                raise SplinescopeError(f"layers: module {label!r} returned {type(out).__name__}")
            g, _ = batch_u_gram(label, out.detach(), kernel, sigma, conv, batch_no[0])
            grams[slot] = g.flatten()

        return hook

    handles = []
    acc: torch.Tensor | None = None
    sq_acc: torch.Tensor | None = None
    n_points = 0
    try:
        for mid, (_m, mods) in by_model.items():
            for layer, module in mods.items():
                handles.append(module.register_forward_hook(hook_for(slots[(mid, layer)], layer)))
        with ExitStack() as stack:
            for m, _ in by_model.values():
                stack.enter_context(measuring(m))
            for b, item in enumerate(loader):
                batch_no[0] = b
                x = _inputs(item, b)
                for i in range(len(grams)):
                    grams[i] = None
                for m, _ in by_model.values():
                    m(x.to(_device(m)))
                missing = [k[1] for k, s in slots.items() if grams[s] is None]
                if missing:
                    raise SplinescopeError(f"layers: modules {missing} did not run in the forward")
                dev = grams[0].device
                g = torch.stack([t.to(dev) for t in grams])  # [slots, b*b]
                nb = x.shape[0]
                scale = 1.0 / (nb * (nb - 3))
                cross = (g[row_idx.to(dev)] @ g[col_idx.to(dev)].T) * scale
                sq = g.square().sum(dim=1) * scale
                acc = cross if acc is None else acc + cross
                sq_acc = sq if sq_acc is None else sq_acc + sq
                n_points += nb
    finally:
        for h in handles:
            h.remove()
    if acc is None or sq_acc is None:
        raise SplinescopeError("loader: yielded no batch")
    n_batches = batch_no[0] + 1
    sq_acc = sq_acc.cpu()
    bad = [k for k, s in slots.items() if not float(sq_acc[s]) > 0.0]
    if bad:
        raise SplinescopeError(
            f"layers: {[k[1] for k in bad]} have a non-positive HSIC with themselves "
            "(degenerate representation)"
        )
    raw = acc.cpu() / torch.sqrt(sq_acc[row_idx][:, None] * sq_acc[col_idx][None, :])
    values = raw.clamp(0.0, 1.0)

    def labels(entries, models, many):
        index = {id(m): i for i, m in enumerate(models)}
        return tuple(f"{index[id(m)]}:{layer}" if many else layer for m, layer in entries)

    return CKAMatrix(
        values=values,
        raw_values=raw,
        row_labels=labels(rows, models_a, many_a),
        col_labels=labels(cols, models_b, many_b),
        n_batches=n_batches,
        n_points=n_points,
        n_clipped=int((values != raw).sum()),
        kernel=kernel,
        estimator="unbiased",
        variant=f"{kernel} {MINIBATCH_NAME}",
        conv=conv,
    )
