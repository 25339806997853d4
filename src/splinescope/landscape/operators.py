"""Curvature operators: Hessian- and GGN-vector products of a dataset loss, streamed in batches.

``CurvatureOperator(model, loss_fn, data)`` is the symmetric linear map ``v -> M v`` on the
flattened trainable parameters, where ``M`` is the Hessian (``curvature="hessian"``) or the
generalized Gauss-Newton matrix ``J^T (d^2 l / dz^2) J`` (``curvature="ggn"``; the Fisher for
cross-entropy, ``2/(N C) J^T J`` for mean-squared error) of the dataset loss

    L(theta) = sum_b (n_b / N) * loss_fn(model(x_b), y_b)      (reduction="mean", default)
    L(theta) = sum_b loss_fn(model(x_b), y_b)                   (reduction="sum")

The batches are streamed and the products summed exactly: the result is the product with the
curvature of the whole dataset, not of one batch. Every module is in eval mode during a
product (dropout off, BatchNorm on running statistics); ``bn_mode="train"`` keeps BatchNorm on
batch statistics, which is only defined for a single batch and is refused otherwise. The
model's modes, parameters, buffers, ``.grad`` fields and the global RNG are never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp, vjp
from torch.nn.modules.batchnorm import _BatchNorm

from splinescope.errors import SplinescopeError
from splinescope.landscape._state import measurement_modes, preserved_rng

__all__ = ["CurvatureOperator", "LossFn"]

LossFn = Callable[[Any, Any], Tensor]
Backend = Literal["auto", "double-backward", "forward-over-reverse"]

# Measured on this project's CPU machine (torch 2.13, float32, 1 thread; benchmarks/
# bench_hessian.py "HVP cost" table, best of 3-5): one product relative to one gradient
# (forward + backward) of the same batch.
#                                     double-backward,  double-backward,  forward-over-reverse
#                                     graph kept        recomputed        (torch.func)
#   MLP 784-256-256-256-10, 1024 in   1.76x             2.79x             3.89x
#   CNN 32-64-64 + linear, 512 in     1.71x             3.32x             2.91x
# Double backward keeping each batch's gradient graph (one backward of the gradient per
# product) is the fastest, and is what "auto" picks. Without a kept graph (several batches)
# double backward recomputes; forward-over-reverse is then close and wins on the CNN, but it
# holds no graph either way; "auto" stays with double backward for one code path.
_AUTO_BACKEND = "double-backward"


class CurvatureOperator:
    """The Hessian or GGN of a dataset loss as a linear operator on flattened parameters.

    Args:
        model: the network; its parameters are the point at which the curvature is taken.
        loss_fn: ``loss_fn(model(x), y) -> scalar tensor`` (e.g. ``nn.CrossEntropyLoss()``).
        data: one batch ``(x, y)`` or a re-iterable of batches (list, ``DataLoader``). The
            batches are read once, at construction, with the global RNG restored afterwards.
        params: ``None`` for every parameter with ``requires_grad``; otherwise names of
            parameters or of modules (a module name selects all its trainable parameters).
        curvature: ``"hessian"`` or ``"ggn"``.
        batch_size: split each batch into micro-batches of at most this many samples.
        bn_mode: ``"eval"`` (running statistics) or ``"train"`` (batch statistics; only for a
            single batch without micro-batching: otherwise the statistics would change).
        reduction: ``"mean"`` if ``loss_fn`` averages over its batch, ``"sum"`` if it sums.
        backend: ``"double-backward"`` (keeps each batch's gradient graph; the faster here),
            ``"forward-over-reverse"`` (``torch.func``; recomputes, holds no graph), or
            ``"auto"``. The GGN always uses ``torch.func``.
        keep_graph: for ``double-backward``, keep the gradient graphs between products
            (memory: about one forward+backward of every batch). ``None``: keep them when the
            data is a single (micro-)batch.

    Attributes:
        n: number of scalar parameters (the operator is ``n x n``).
        n_products: operator applications so far (each streams the whole dataset once).
        names, shapes: the flattened parameters, in order.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        *,
        params: Sequence[str] | None = None,
        curvature: Literal["hessian", "ggn"] = "hessian",
        batch_size: int | None = None,
        bn_mode: Literal["eval", "train"] = "eval",
        reduction: Literal["mean", "sum"] = "mean",
        backend: Backend = "auto",
        keep_graph: bool | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise SplinescopeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise SplinescopeError(f"loss_fn: expected a callable, got {type(loss_fn).__name__}")
        if curvature not in ("hessian", "ggn"):
            raise SplinescopeError(f"curvature: expected 'hessian' or 'ggn', got {curvature!r}")
        if bn_mode not in ("eval", "train"):
            raise SplinescopeError(f"bn_mode: expected 'eval' or 'train', got {bn_mode!r}")
        if reduction not in ("mean", "sum"):
            raise SplinescopeError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
        if backend not in ("auto", "double-backward", "forward-over-reverse"):
            raise SplinescopeError(
                "backend: expected 'auto', 'double-backward' or 'forward-over-reverse', "
                f"got {backend!r}"
            )
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise SplinescopeError(
                f"batch_size: expected a positive int or None, got {batch_size!r}"
            )

        self.model = model
        self.loss_fn = loss_fn
        self.curvature = curvature
        self.reduction = reduction
        self.bn_train = bn_mode == "train"
        self.backend = _AUTO_BACKEND if backend == "auto" else backend

        selected = _select_parameters(model, params)
        self.names: list[str] = [name for name, _ in selected]
        self._params: list[Tensor] = [p for _, p in selected]
        self.shapes: list[torch.Size] = [p.shape for p in self._params]
        self._sizes = [p.numel() for p in self._params]
        self.n = sum(self._sizes)
        self.dtype = self._params[0].dtype
        self.device = self._params[0].device
        chosen = {id(p) for p in self._params}
        # Parameters outside the selection enter every forward as constants.
        self._frozen = {
            name: p.detach() for name, p in model.named_parameters() if id(p) not in chosen
        }
        self._buffers = dict(model.named_buffers())

        self._batches = _materialise(data, batch_size)
        total = sum(n for _, _, n in self._batches)
        self._weights = [n / total if reduction == "mean" else 1.0 for _, _, n in self._batches]
        self.n_samples = total
        if self.bn_train and any(isinstance(m, _BatchNorm) for m in model.modules()):
            if len(self._batches) > 1:
                raise SplinescopeError(
                    f"bn_mode='train' with {len(self._batches)} (micro-)batches: BatchNorm in "
                    "train mode normalises with each batch's own statistics, so the loss summed "
                    "over micro-batches is not the loss of the whole batch and its Hessian would "
                    "change with the batch split. Pass the data as one batch without batch_size, "
                    "or use bn_mode='eval' (running statistics)."
                )
        self.keep_graph = (len(self._batches) == 1) if keep_graph is None else bool(keep_graph)
        self._graphs: list[tuple[Tensor, ...]] | None = None
        self.n_products = 0

    # ----------------------------------------------------------------- flattening
    def flatten(self, tensors: Sequence[Tensor]) -> Tensor:
        """Concatenate per-parameter tensors (in :attr:`names` order) into one vector."""
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, vector: Tensor) -> dict[str, Tensor]:
        """Split a length-``n`` vector into per-parameter tensors keyed by parameter name."""
        if vector.shape != (self.n,):
            raise SplinescopeError(f"vector: expected shape ({self.n},), got {tuple(vector.shape)}")
        parts = torch.split(vector, self._sizes)
        return {n: p.view(s) for n, p, s in zip(self.names, parts, self.shapes, strict=True)}

    # ----------------------------------------------------------------- products
    def matvec(self, vector: Tensor) -> Tensor:
        """``M @ vector`` for a length-``n`` vector; returned in ``vector``'s dtype and device."""
        if vector.shape != (self.n,):
            raise SplinescopeError(f"vector: expected shape ({self.n},), got {tuple(vector.shape)}")
        v = vector.to(device=self.device, dtype=self.dtype)
        with measurement_modes(self.model, bn_train=self.bn_train), torch.enable_grad():
            out = torch.zeros(self.n, device=self.device, dtype=self.dtype)
            for index in range(len(self._batches)):
                out += self._product(index, v)
        self.n_products += 1
        if not bool(torch.isfinite(out).all()):
            self._raise_nonfinite(v)
        return out.to(device=vector.device, dtype=vector.dtype)

    __call__ = matvec

    def loss(self) -> float:
        """The dataset loss at the current parameters (same weighting as the products)."""
        total = 0.0
        with measurement_modes(self.model, bn_train=self.bn_train), torch.no_grad():
            for index, (x, y, _) in enumerate(self._batches):
                total += float(self._batch_loss(self._live(), x, y, index))
        return total

    def release(self) -> None:
        """Drop the kept gradient graphs (they are rebuilt on the next product if needed)."""
        self._graphs = None

    def _live(self) -> dict[str, Tensor]:
        return dict(zip(self.names, self._params, strict=True))

    def _batch_loss(self, live: dict[str, Tensor], x: Any, y: Any, index: int) -> Tensor:
        tensors = {**self._frozen, **live}
        if self.bn_train:
            # Train-mode BatchNorm updates running statistics in place: give it copies.
            tensors.update({name: b.clone() for name, b in self._buffers.items()})
        out = functional_call(self.model, tensors, (_to(x, self.device),))
        loss = self.loss_fn(out, _to(y, self.device))
        if not isinstance(loss, Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
            raise SplinescopeError(
                f"loss_fn: must return a scalar tensor, got {shape} on batch {index}; "
                "use a reduction='mean' or 'sum' loss"
            )
        return loss * self._weights[index]

    def _product(self, index: int, v: Tensor) -> Tensor:
        if self.curvature == "ggn":
            return self._ggn_product(index, v)
        if self.backend == "forward-over-reverse":
            return self._fwd_over_rev_product(index, v)
        return self._double_backward_product(index, v)

    def _gradient_graph(self, index: int) -> tuple[Tensor, ...]:
        x, y, _ = self._batches[index]
        loss = self._batch_loss(self._live(), x, y, index)
        return torch.autograd.grad(loss, self._params, create_graph=True, allow_unused=True)

    def _double_backward_product(self, index: int, v: Tensor) -> Tensor:
        if self.keep_graph:
            if self._graphs is None:
                self._graphs = [self._gradient_graph(i) for i in range(len(self._batches))]
            grads = self._graphs[index]
        else:
            grads = self._gradient_graph(index)
        vs = torch.split(v, self._sizes)
        dot = None
        for g, vi in zip(grads, vs, strict=True):
            if g is not None and g.requires_grad:
                term = (g.reshape(-1) * vi).sum()
                dot = term if dot is None else dot + term
        if dot is None:  # the gradient is constant: zero curvature
            return torch.zeros_like(v)
        hv = torch.autograd.grad(dot, self._params, retain_graph=self.keep_graph, allow_unused=True)
        return self._flat_or_zero(hv)

    def _fwd_over_rev_product(self, index: int, v: Tensor) -> Tensor:
        x, y, _ = self._batches[index]
        primals = {n: p.detach() for n, p in self._live().items()}
        tangents = self.unflatten(v)

        def gradient(p: dict[str, Tensor]) -> dict[str, Tensor]:
            return grad(lambda q: self._batch_loss(q, x, y, index))(p)

        _, hv = jvp(gradient, (primals,), (tangents,))
        return self.flatten([hv[n] for n in self.names])

    def _ggn_product(self, index: int, v: Tensor) -> Tensor:
        x, y, _ = self._batches[index]
        primals = {n: p.detach() for n, p in self._live().items()}
        xd, yd = _to(x, self.device), _to(y, self.device)

        def outputs(p: dict[str, Tensor]) -> Tensor:
            tensors = {**self._frozen, **p}
            if self.bn_train:  # fresh copies inside the transform: BN updates them in place
                tensors.update({name: b.clone() for name, b in self._buffers.items()})
            return functional_call(self.model, tensors, (xd,))

        def loss_of_outputs(z: Tensor) -> Tensor:
            loss = self.loss_fn(z, yd)
            if not isinstance(loss, Tensor) or loss.dim() != 0:
                raise SplinescopeError(
                    f"loss_fn: must return a scalar tensor, got {tuple(loss.shape)} on batch {index}"
                )
            return loss * self._weights[index]

        z, pullback = vjp(outputs, primals)
        _, jv = jvp(outputs, (primals,), (self.unflatten(v),))
        # (d^2 l / dz^2) (J v) by double backward in output space (small: N x C)
        zz = z.detach().requires_grad_(True)
        (gz,) = torch.autograd.grad(loss_of_outputs(zz), zz, create_graph=True)
        if gz.requires_grad:
            (hz,) = torch.autograd.grad(gz, zz, grad_outputs=jv.detach(), allow_unused=True)
        else:
            hz = None
        if hz is None:  # the loss is linear in the outputs: zero GGN
            return torch.zeros_like(v)
        (gv,) = pullback(hz)
        return self.flatten([gv[n] for n in self.names])

    def _flat_or_zero(self, parts: Sequence[Tensor | None]) -> Tensor:
        return torch.cat(
            [
                (
                    torch.zeros(s, device=self.device, dtype=self.dtype)
                    if t is None
                    else t.reshape(-1)
                )
                for t, s in zip(parts, self._sizes, strict=True)
            ]
        )

    def _raise_nonfinite(self, v: Tensor) -> None:
        step = self.n_products
        with measurement_modes(self.model, bn_train=self.bn_train):
            for index, (x, y, _) in enumerate(self._batches):
                with torch.no_grad():
                    loss = self._batch_loss(self._live(), x, y, index)
                if not bool(torch.isfinite(loss)):
                    raise SplinescopeError(
                        f"loss_fn: the loss is {float(loss)} on batch {index} "
                        f"(curvature product {step}); check the model and the data"
                    )
                with torch.enable_grad():
                    part = self._product(index, v)
                if not bool(torch.isfinite(part).all()):
                    raise SplinescopeError(
                        f"non-finite {self.curvature}-vector product {step} on batch {index}, "
                        "though the loss there is finite; the curvature overflows at these "
                        "parameters (try float64)"
                    )
        raise SplinescopeError(
            f"non-finite {self.curvature}-vector product {step}: every batch alone is finite but "
            "their sum is not"
        )


def _to(obj: Any, device: torch.device) -> Any:
    return obj.to(device) if isinstance(obj, Tensor) else obj


def _select_parameters(model: nn.Module, params: Sequence[str] | None) -> list[tuple[str, Tensor]]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise SplinescopeError(
            f"model: {type(model).__name__} has no trainable parameters "
            "(none with requires_grad=True); there is no curvature to measure"
        )
    if params is None:
        return named
    if isinstance(params, str):
        params = [params]
    chosen: dict[str, Tensor] = {}
    for key in params:
        hits = [(n, p) for n, p in named if n == key or n.startswith(key + ".")]
        if not hits:
            available = ", ".join(n for n, _ in named[:12])
            raise SplinescopeError(
                f"params: {key!r} names no trainable parameter or module of "
                f"{type(model).__name__} (trainable parameters: {available}"
                f"{', ...' if len(named) > 12 else ''})"
            )
        chosen.update(hits)
    return [(n, p) for n, p in named if n in chosen]


def _materialise(data: Any, batch_size: int | None) -> list[tuple[Any, Any, int]]:
    """Read ``data`` once into ``(x, y, n)`` batches, split into micro-batches if asked."""
    if _is_pair(data):
        raw: Iterable[Any] = [data]
    else:
        try:
            iterator = iter(data)
        except TypeError:
            raise SplinescopeError(
                "data: expected one batch (x, y) or an iterable of (x, y) batches, "
                f"got {type(data).__name__}"
            ) from None
        with preserved_rng():  # a shuffling DataLoader draws from the global RNG
            raw = list(iterator)
    batches: list[tuple[Any, Any, int]] = []
    for i, batch in enumerate(raw):
        if not _is_pair(batch):
            raise SplinescopeError(
                f"data: batch {i} is a {type(batch).__name__}; expected a pair (x, y)"
            )
        x, y = batch
        n = _batch_len(x, y, i)
        if batch_size is None or n <= batch_size:
            batches.append((x, y, n))
            continue
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batches.append((_slice(x, start, stop, i), _slice(y, start, stop, i), stop - start))
    if not batches or sum(n for _, _, n in batches) == 0:
        raise SplinescopeError("data: no samples (an empty dataset has no loss to differentiate)")
    return batches


def _is_pair(obj: Any) -> bool:
    return (
        isinstance(obj, (tuple, list))
        and len(obj) == 2
        and not any(_is_pair(o) for o in obj)
        and (isinstance(obj[0], Tensor) or isinstance(obj[1], Tensor))
    )


def _batch_len(x: Any, y: Any, index: int) -> int:
    for obj in (x, y):
        if isinstance(obj, Tensor) and obj.dim() > 0:
            return int(obj.shape[0])
    raise SplinescopeError(f"data: batch {index} has no tensor with a batch dimension")


def _slice(obj: Any, start: int, stop: int, index: int) -> Any:
    if isinstance(obj, Tensor):
        return obj[start:stop]
    raise SplinescopeError(
        f"batch_size: cannot split batch {index}: its {type(obj).__name__} is not a tensor"
    )
