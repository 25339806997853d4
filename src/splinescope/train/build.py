"""What a config builds: data, model, loss, optimizer, batch sampler, probes and schedules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.schedules import Schedule, parse_schedule
from splinescope.train.config import TrainConfig


def mse_onehot(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error between logits ``[B, C]`` and one-hot labels (mean over B·C)."""
    target = torch.nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return torch.nn.functional.mse_loss(logits, target)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": mse_onehot,
    "cross_entropy": torch.nn.functional.cross_entropy,
}


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``"mse"`` (on one-hot targets, Omnigrok) or ``"cross_entropy"``."""
    if name not in LOSSES:
        raise SplinescopeError(f"config field 'loss': allowed values: {', '.join(LOSSES)}")
    return LOSSES[name]


class BatchLoss:
    """The loss of a training batch given by its indices into the training set:
    ``loss(logits, index) == make_loss(name)(logits, labels[index])`` bit for bit, with the
    MSE's one-hot targets built once (per dtype and class count) instead of at every step.

    ``labels`` [N] int64, on the device of the logits.
    """

    def __init__(self, name: str, labels: torch.Tensor) -> None:
        self.name = name
        self.labels = labels
        self.fn = make_loss(name)
        self._targets: dict[tuple[torch.dtype, int], torch.Tensor] = {}

    def __call__(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.name != "mse":
            return self.fn(logits, self.labels[index])
        key = (logits.dtype, int(logits.shape[1]))
        table = self._targets.get(key)
        if table is None:
            table = torch.nn.functional.one_hot(self.labels, key[1]).to(key[0])
            self._targets[key] = table
        return torch.nn.functional.mse_loss(logits, table[index])


def data_spec(config: TrainConfig) -> dict[str, Any]:
    """The :func:`splinescope.data.load_dataset` arguments a config names (``name`` first)."""
    options = dict(config.data_options)
    if config.model == "cnn" and config.dataset in ("digits", "mnist", "mnist1d"):
        options.setdefault("flatten", False)
    return {
        "name": config.dataset,
        "seed": config.data_seed,
        "n_train": config.n_train or None,
        "label_noise": config.label_noise,
        **options,
    }


def load_data(config: TrainConfig):
    """The :class:`splinescope.data.SplitData` a config names."""
    from splinescope.data import load_dataset

    spec = data_spec(config)
    return load_dataset(spec.pop("name"), **spec)


def model_spec(config: TrainConfig, data) -> dict[str, Any]:
    """The :func:`splinescope.models.build_model` arguments (``kind`` and sizes included)."""
    from splinescope.models import MODELS
    from splinescope.models._build import _from_data

    if config.model == "mlp":
        options: dict[str, Any] = {
            "width": config.width,
            "depth": config.depth,
            "activation": config.activation,
            "init_scale": config.init_scale,
        }
    elif config.model == "cnn":
        options = {"channels": list(config.channels), "batchnorm": config.batchnorm}
    else:
        options = {"width": config.width, "batchnorm": config.batchnorm}
    return {"kind": config.model, **_from_data(MODELS[config.model], data), **options}


def make_model(config: TrainConfig, data) -> nn.Module:
    """The model a config names, sized from ``data``; initialised from the global RNG."""
    from splinescope.models import build_model

    spec = model_spec(config, data)
    model = build_model(spec.pop("kind"), **spec)
    if config.model != "mlp" and config.init_scale != 1.0:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(config.init_scale)
    return model


#: Devices whose AdamW / Adam run as one fused kernel over all parameters.
FUSED_DEVICES = ("cpu", "cuda")


def fused_supported(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused Adam(W) takes ``params``: floating point, all on one of
    :data:`FUSED_DEVICES`."""
    return bool(params) and all(
        p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params
    )


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD (with momentum) over all parameters.

    AdamW and Adam use torch's fused implementation where it exists (CPU, CUDA): the same
    update in one kernel instead of ~10 per parameter tensor, 25-35 % of a small MLP's training
    step on CPU; its rounding differs from the per-tensor loop's by about 1 ulp per step
    (tests/test_train.py bounds it). An optimizer restored from a checkpoint keeps the
    implementation it was saved with, so a resumed run continues as it began.
    """
    params = list(model.parameters())
    fused = True if fused_supported(params) else None
    if config.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=config.lr, weight_decay=config.weight_decay, fused=fused
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def make_schedule(config: TrainConfig) -> Schedule:
    """The run's default schedule (``config.schedule`` over ``config.steps``)."""
    return parse_schedule(config.schedule, config.steps, where="config field 'schedule'")


def make_probes(config: TrainConfig) -> list[tuple[Any, Schedule]]:
    """Each ``[[probes]]`` table built through the registry, with its schedule; a table
    without ``seed`` takes the run's ``seed`` when its kind has that field."""
    from splinescope import fields as F
    from splinescope.monitor.registry import get_kind

    default = make_schedule(config)
    out = []
    for table in config.probe_tables():
        if "seed" in F.field_types(get_kind(table.kind).config) and "seed" not in table.options:
            table = dataclasses.replace(table, options={**table.options, "seed": config.seed})
        schedule = (
            default
            if table.schedule is None
            else parse_schedule(table.schedule, config.steps, where=f"probe {table.name!r}")
        )
        out.append((table.build(), schedule))
    return out


class BatchSampler:
    """Mini-batches drawn epoch by epoch from seeded permutations (a private generator).

    ``batch_size`` 0 means full batch. :meth:`state_dict` makes resuming exact.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n = n
        self.batch_size = batch_size if 0 < batch_size < n else n
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n, generator=self.generator)
        self.position = 0

    def next(self) -> torch.Tensor:
        """Indices of the next batch ``[batch_size]`` (int64)."""
        if self.batch_size == self.n:
            return self.order
        if self.position + self.batch_size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return index

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "order": self.order.clone(),
            "position": self.position,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.position = int(state["position"])
