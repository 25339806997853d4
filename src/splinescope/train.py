"""The training loop behind ``splinescope run``: a typed config, checkpoints, resume.

A :class:`TrainConfig` is a frozen dataclass; overrides (from a TOML file, ``--set`` or
``--steps``) are type-checked against the field's type, and an unknown field or a bad value is
a :class:`~splinescope.errors.SplinescopeError` naming the field and the allowed values (as
nanoGPT's configurator does). :func:`train` builds data, model and probes from a config, runs
the loop with a :class:`~splinescope.monitor.Monitor` attached, checkpoints model + optimizer
+ RNG states at every probe step under ``runs_dir/<run_id>/checkpoint.pt`` (the model weights of
every probe step also under ``models/step_<S>.pt``, for partition pictures), and stores the
detected phenomena as the run summary.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.monitor import Monitor
from splinescope.monitor.probe import ProbeContext
from splinescope.monitor.probes import (
    AccuracyProbe,
    AdversarialProbe,
    AttackSpec,
    CodesProbe,
    HessianProbe,
    LocalComplexityProbe,
    PartitionProbe,
    UnitActivityProbe,
    WeightNormProbe,
)
from splinescope.monitor.schedules import EverySchedule, LogSchedule, Schedule

PROBES = ("accuracy", "lc", "adversarial", "weights", "units")
OPTIONAL_PROBES = ("hessian", "codes", "partition")  # opt in: --set probes=accuracy,lc,hessian
ATTACK_NAMES = ("fgsm_linf", "pgd_linf", "pgd_l2")
CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "models"

# Fields whose value must be one of a fixed list (tuple fields: every element).
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": ("digits", "mnist1d", "modular", "moons", "circles", "spirals"),
    "model": ("mlp", "cnn", "resnet"),
    "activation": ("relu", "leaky_relu", "abs", "hardtanh", "gelu", "tanh"),
    "optimizer": ("adamw", "adam", "sgd"),
    "loss": ("mse", "cross_entropy"),
    "schedule": ("log", "every"),
    "probes": PROBES + OPTIONAL_PROBES,
    "adv_attacks": ATTACK_NAMES,
    "device": ("cpu", "cuda", "mps"),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. Units: steps are optimizer updates; eps and radius are
    in input units (the data domain, e.g. [0, 1] for digits)."""

    name: str = "run"
    description: str = ""
    # data
    dataset: str = "digits"
    data_options: dict = field(default_factory=dict)
    n_train: int = 0  # 0: the whole training split
    label_noise: float = 0.0
    data_seed: int = 0
    # model
    model: str = "mlp"
    width: int = 200
    depth: int = 2
    activation: str = "relu"
    init_scale: float = 1.0
    channels: tuple[int, ...] = (32, 64)
    batchnorm: bool = False
    # optimisation
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9
    loss: str = "mse"
    batch_size: int = 200  # 0: full batch
    steps: int = 100_000
    seed: int = 0
    device: str = "cpu"
    # measuring
    schedule: str = "log"
    schedule_points: int = 60
    every: int = 1000
    probes: tuple[str, ...] = PROBES
    lc_radius: float = 0.05
    lc_vertices: int = 50
    lc_points: int = 500
    adv_attacks: tuple[str, ...] = ("fgsm_linf", "pgd_linf")
    adv_eps: float = 0.05
    adv_l2_eps: float = 0.5
    adv_steps: int = 10
    adv_points: int = 300
    adv_splits: tuple[str, ...] = ("test", "train")
    checkpoint: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
            allowed = CHOICES.get(f.name)
            if allowed is not None:
                values = getattr(self, f.name)
                for v in values if isinstance(values, tuple) else (values,):
                    if v not in allowed:
                        raise SplinescopeError(
                            f"config field {f.name!r}: {v!r} is not allowed; allowed values: "
                            f"{', '.join(allowed)}"
                        )
        positive = ("width", "steps", "schedule_points", "every", "lc_vertices", "lc_points")
        for name in (*positive, "adv_steps", "adv_points"):
            if getattr(self, name) < 1:
                raise SplinescopeError(
                    f"config field {name!r}: must be ≥ 1, got {getattr(self, name)}"
                )
        for name in ("depth", "n_train", "batch_size", "seed", "data_seed"):
            if getattr(self, name) < 0:
                raise SplinescopeError(
                    f"config field {name!r}: must be ≥ 0, got {getattr(self, name)}"
                )
        for name in ("lr", "init_scale", "lc_radius", "adv_eps", "adv_l2_eps"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise SplinescopeError(f"config field {name!r}: must be a finite number > 0")
        if not 0.0 <= self.label_noise < 1.0:
            raise SplinescopeError(
                f"config field 'label_noise': must be in [0, 1), got {self.label_noise}"
            )
        if self.weight_decay < 0:
            raise SplinescopeError("config field 'weight_decay': must be ≥ 0")
        if self.lc_vertices % 2:
            raise SplinescopeError(
                f"config field 'lc_vertices': must be even, got {self.lc_vertices}"
            )
        bad = [s for s in self.adv_splits if s not in ("train", "test")]
        if bad or not self.adv_splits:
            raise SplinescopeError(
                f"config field 'adv_splits': allowed values: train, test; got {self.adv_splits!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON- and TOML-friendly dict (tuples as lists)."""
        return {
            f.name: list(v) if isinstance(v, tuple) else (dict(v) if isinstance(v, dict) else v)
            for f in fields(self)
            for v in (getattr(self, f.name),)
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """A config from a dict (e.g. stored with a run); unknown keys are errors."""
        return apply_overrides(cls(), values)


FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))


def _type_name(annotation: str) -> str:
    return {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "dict": "a table of options",
        "tuple[int, ...]": "a list of integers",
        "tuple[str, ...]": "a list of strings",
    }[annotation]


def _check_type(name: str, value: Any, annotation: str) -> None:
    ok = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, float),
        "bool": lambda v: isinstance(v, bool),
        "dict": lambda v: isinstance(v, dict),
        "tuple[int, ...]": lambda v: (
            isinstance(v, tuple) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        ),
        "tuple[str, ...]": lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
    }[annotation](value)
    if not ok:
        raise SplinescopeError(
            f"config field {name!r}: expected {_type_name(annotation)}, got {value!r}"
        )


def _coerce(name: str, value: Any, annotation: str) -> Any:
    """Convert a TOML/JSON value to the field's type (lists to tuples, ints to floats)."""
    if annotation == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation.startswith("tuple") and isinstance(value, list):
        return tuple(value)
    if annotation == "dict" and isinstance(value, Mapping):
        return dict(value)
    return value


def _unknown_field(key: str) -> SplinescopeError:
    import difflib

    close = difflib.get_close_matches(key, FIELD_NAMES, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return SplinescopeError(
        f"config field {key!r} is unknown{hint}; allowed fields: {', '.join(FIELD_NAMES)}"
    )


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """``config`` with ``overrides`` applied; each key must be a field, each value of its type.

    ``data_options`` entries can be given as ``"data_options.<option>"`` keys.
    """
    annotations = {f.name: f.type for f in fields(TrainConfig)}
    changes: dict[str, Any] = {}
    data_options = dict(config.data_options)
    for key, value in overrides.items():
        if key.startswith("data_options."):
            data_options[key.split(".", 1)[1]] = value
            changes["data_options"] = data_options
            continue
        if key not in annotations:
            raise _unknown_field(key)
        value = _coerce(key, value, annotations[key])
        _check_type(key, value, annotations[key])
        if key == "data_options":
            data_options = {**data_options, **value}
            value = data_options
        changes[key] = value
    return dataclasses.replace(config, **changes)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse a CLI ``KEY=VALUE`` into a typed pair (the value read as the field's type).

    Lists are comma-separated (``probes=accuracy,lc``); booleans are ``true``/``false``.
    """
    if "=" not in text:
        raise SplinescopeError(f"--set {text!r}: expected KEY=VALUE")
    key, raw = (part.strip() for part in text.split("=", 1))
    if key.startswith("data_options."):
        try:
            return key, tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            return key, raw
    annotations = {f.name: f.type for f in fields(TrainConfig)}
    if key not in annotations:
        raise _unknown_field(key)
    annotation = annotations[key]
    try:
        if annotation == "str":
            return key, raw
        if annotation == "int":
            return key, int(raw)
        if annotation == "float":
            return key, float(raw)
        if annotation == "bool":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return key, raw.lower() == "true"
        if annotation == "tuple[int, ...]":
            return key, tuple(int(x) for x in raw.split(",") if x.strip())
        if annotation == "tuple[str, ...]":
            return key, tuple(x.strip() for x in raw.split(",") if x.strip())
    except ValueError:
        pass
    else:
        raise SplinescopeError(f"config field {key!r}: cannot be set from the command line")
    raise SplinescopeError(f"config field {key!r}: expected {_type_name(annotation)}, got {raw!r}")


def load_config_file(path: str | os.PathLike, base: Callable[[str], TrainConfig]) -> TrainConfig:
    """A config from a TOML file: top-level fields, optionally ``preset = "NAME"`` as the base.

    ``base(name)`` returns a preset's config (it raises for unknown names).
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise SplinescopeError(f"config file {str(path)!r}: not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SplinescopeError(f"config file {str(path)!r}: invalid TOML ({exc})") from exc
    preset = values.pop("preset", None)
    config = base(preset) if preset is not None else TrainConfig()
    if "name" not in values and preset is None:
        values["name"] = path.stem
    return apply_overrides(config, values)


# ---------------------------------------------------------------------------- building blocks


def mse_onehot(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error between logits ``[B, C]`` and one-hot labels (mean over B·C)."""
    target = torch.nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return torch.nn.functional.mse_loss(logits, target)


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``"mse"`` (on one-hot targets, Omnigrok) or ``"cross_entropy"``."""
    if name == "mse":
        return mse_onehot
    if name == "cross_entropy":
        return torch.nn.functional.cross_entropy
    raise SplinescopeError(f"config field 'loss': allowed values: {', '.join(CHOICES['loss'])}")


def load_data(config: TrainConfig):
    """The :class:`splinescope.data.SplitData` a config names."""
    from splinescope.data import load_dataset

    options = dict(config.data_options)
    if config.model == "cnn" and config.dataset in ("digits", "mnist1d"):
        options.setdefault("flatten", False)
    return load_dataset(
        config.dataset,
        seed=config.data_seed,
        n_train=config.n_train or None,
        label_noise=config.label_noise,
        **options,
    )


def make_model(config: TrainConfig, data) -> nn.Module:
    """The model a config names, sized from ``data``; initialised from the global RNG."""
    from splinescope.models import build_model

    if config.model == "mlp":
        return build_model(
            "mlp",
            data=data,
            width=config.width,
            depth=config.depth,
            activation=config.activation,
            init_scale=config.init_scale,
        )
    if config.model == "cnn":
        model = build_model("cnn", data=data, channels=config.channels, batchnorm=config.batchnorm)
    else:
        model = build_model("resnet", data=data, width=config.width, batchnorm=config.batchnorm)
    if config.init_scale != 1.0:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(config.init_scale)
    return model


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD (with momentum) over all parameters."""
    params = model.parameters()
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def make_schedule(config: TrainConfig) -> Schedule:
    """Log-spaced (``schedule_points`` over 1..steps, plus 0) or every ``every`` steps."""
    if config.schedule == "log":
        return LogSchedule(config.schedule_points, config.steps)
    return EverySchedule(config.every, max_step=config.steps)


def make_probes(config: TrainConfig, data) -> list:
    """The probes a config selects, with its LC and attack settings."""
    dim = int(np.prod(data.input_shape))
    probes: list = []
    for name in config.probes:
        if name == "accuracy":
            probes.append(AccuracyProbe())
        elif name == "lc":
            probes.append(
                LocalComplexityProbe(
                    radius=config.lc_radius,
                    n_vertices=min(config.lc_vertices, 2 * dim),
                    n_points=config.lc_points,
                    seed=config.seed,
                )
            )
        elif name == "adversarial":
            attacks = []
            for attack in config.adv_attacks:
                kind, norm = attack.split("_")
                eps = config.adv_l2_eps if norm == "l2" else config.adv_eps
                attacks.append(AttackSpec(kind, norm, eps=eps, steps=config.adv_steps))
            probes.append(
                AdversarialProbe(
                    attacks=tuple(attacks),
                    splits=config.adv_splits,
                    n_points=config.adv_points,
                    seed=config.seed,
                )
            )
        elif name == "weights":
            probes.append(WeightNormProbe())
        elif name == "units":
            probes.append(UnitActivityProbe())
        elif name == "hessian":
            probes.append(HessianProbe(seed=config.seed))
        elif name == "codes":
            probes.append(CodesProbe(n_points=config.lc_points, seed=config.seed))
        elif name == "partition":
            probes.append(PartitionProbe())
    return probes


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


# ---------------------------------------------------------------------------- checkpoints


def check_runs_dir(runs_dir: str | os.PathLike) -> Path:
    """Create ``runs_dir`` if needed and prove it is writable; a clear error if not."""
    path = Path(runs_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise SplinescopeError(
            f"runs directory {str(path)!r} is not writable ({exc.strerror or exc}); "
            "choose another with --runs-dir"
        ) from exc
    return path


def snapshot_path(runs_dir: str | os.PathLike, run_id: str, step: int) -> Path:
    """Where the model's weights at probe step ``step`` are kept (for partition pictures)."""
    return Path(runs_dir) / run_id / SNAPSHOTS / f"step_{step:09d}.pt"


def snapshot_steps(runs_dir: str | os.PathLike, run_id: str) -> list[int]:
    """The probe steps whose model weights were kept, ascending."""
    folder = Path(runs_dir) / run_id / SNAPSHOTS
    return sorted(int(p.stem.removeprefix("step_")) for p in folder.glob("step_*.pt"))


def save_snapshot(path: Path, model: nn.Module) -> None:
    """Write the model's ``state_dict`` atomically to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)


def save_checkpoint(
    path: Path,
    *,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: BatchSampler,
) -> None:
    """Write model, optimizer, sampler and global RNG states atomically to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler": sampler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, sampler: BatchSampler
) -> int:
    """Restore what :func:`save_checkpoint` wrote; returns the checkpoint's step."""
    if not path.exists():
        raise SplinescopeError(f"--resume: no checkpoint at {str(path)!r}; cannot resume this run")
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    sampler.load_state_dict(state["sampler"])
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    return int(state["step"])


# ---------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class Progress:
    """What the loop reports to a progress callback.

    ``loss`` is the last mini-batch loss; ``latest`` the Monitor's latest scalars per probe.
    """

    step: int
    total: int
    loss: float
    latest: dict[str, dict[str, float]]
    measured: bool


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train`: run id, final step, summary (phenomena), wall time (s)."""

    run_id: str
    step: int
    summary: dict[str, Any]
    latest: dict[str, dict[str, float]]
    seconds: float
    probe_errors: int


def _summarise(runs_dir: Path, run_id: str, store: Any) -> dict[str, Any]:
    from splinescope.monitor.phenomena import detect_phenomena
    from splinescope.store import load_metrics

    found = detect_phenomena(load_metrics(runs_dir, run_id))
    if dataclasses.is_dataclass(found):
        found = dataclasses.asdict(found)
    summary = dict(found)
    store.set_summary(run_id, summary)
    return summary


def train(
    config: TrainConfig | None,
    *,
    runs_dir: str | os.PathLike = "runs",
    resume: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: int = 100,
    strict: bool = False,
    stop_after: int | None = None,
    on_start: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``config``'s model with the Monitor attached and store everything in ``runs_dir``.

    Args:
        config: the run's definition; ``None`` with ``resume`` (the stored config is used).
        runs_dir: the runs directory (created; must be writable).
        resume: a run id / prefix / name to continue from its last checkpoint.
        on_progress: called every ``progress_every`` steps and at every probe step.
        strict: re-raise probe errors.
        stop_after: raise ``KeyboardInterrupt`` after this step (tests of interruption).
        on_start: called with the run id once the run exists (before the first step).

    Returns:
        :class:`TrainResult`. A ``KeyboardInterrupt`` marks the run ``interrupted`` (data and
        checkpoint kept) and propagates; any other exception marks it ``crashed``.
    """
    from splinescope.store import RunStore, get_run

    if config is None and resume is None:
        raise SplinescopeError("config: give a TrainConfig, or resume=RUN to continue a run")
    runs_dir = check_runs_dir(runs_dir)
    store = RunStore(runs_dir)
    try:
        if resume is not None:
            row = get_run(runs_dir, resume)
            run_id = row["run_id"]
            config = TrainConfig.from_dict(row["config"])
            if row["status"] in ("finished", "running"):
                raise SplinescopeError(
                    f"--resume: run {run_id} is {row['status']}; only interrupted or crashed "
                    "runs can be resumed"
                )
        torch.manual_seed(config.seed)
        data = load_data(config)
        device = torch.device(config.device)
        model = make_model(config, data).to(device)
        optimizer = make_optimizer(config, model)
        loss_fn = make_loss(config.loss)
        sampler = BatchSampler(data.n_train, config.batch_size, seed=config.seed + 1)
        x_train, y_train = data.x_train.to(device), data.y_train.to(device)
        context = ProbeContext.from_data(
            data, loss_fn=loss_fn, n_random=config.lc_points, seed=config.seed, device=device
        )
        schedule = make_schedule(config)
        probes = make_probes(config, data)
        start = 0
        if resume is not None:
            checkpoint = runs_dir / run_id / CHECKPOINT
            start = (
                load_checkpoint(checkpoint, model=model, optimizer=optimizer, sampler=sampler) + 1
            )
            store.set_status(run_id, "running")
        else:
            run_id = store.create_run(
                config.name, config.to_dict(), seed=config.seed, device=str(device)
            )
        monitor = Monitor(
            model, probes, store, schedule, context=context, run_id=run_id, strict=strict
        )
    except BaseException:
        store.close()
        raise
    if on_start is not None:
        on_start(run_id)

    checkpoint = runs_dir / run_id / CHECKPOINT
    began = time.perf_counter()
    loss_value = float("nan")
    step = start - 1
    try:
        with monitor:
            model.train()
            for step in range(start, config.steps + 1):
                if step > 0:
                    index = sampler.next()
                    loss = loss_fn(model(x_train[index]), y_train[index])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_value = loss.item()
                measured = monitor.step(step) is not None
                if measured and config.checkpoint:
                    save_checkpoint(
                        checkpoint, step=step, model=model, optimizer=optimizer, sampler=sampler
                    )
                    save_snapshot(snapshot_path(runs_dir, run_id, step), model)
                if on_progress is not None and (measured or step % progress_every == 0):
                    on_progress(Progress(step, config.steps, loss_value, monitor.latest, measured))
                if stop_after is not None and step >= stop_after:
                    raise KeyboardInterrupt
            try:
                summary = _summarise(runs_dir, run_id, store)
            except Exception as exc:
                store.log_error(
                    run_id,
                    step,
                    "phenomena",
                    f"{type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                )
                summary = {}
    finally:
        store.close()
    return TrainResult(
        run_id=run_id,
        step=step,
        summary=summary,
        latest=monitor.latest,
        seconds=time.perf_counter() - began,
        probe_errors=monitor.errors,
    )
