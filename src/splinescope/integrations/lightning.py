"""A PyTorch Lightning callback that runs splinescope probes during ``trainer.fit``
(extra: ``splinescope[lightning]``).

::

    from splinescope.integrations.lightning import SplinescopeCallback
    trainer = L.Trainer(max_steps=2000, callbacks=[SplinescopeCallback(runs_dir="runs")])
    trainer.fit(module, datamodule)

When it fires:

- ``on_train_start``: fixes the training points (the first ``n_train`` examples of the train
  loader's dataset, read without touching the global RNG), opens the run (or continues the one
  saved in the checkpoint being resumed) and measures the step probes due at the current
  ``trainer.global_step`` (0 on a fresh fit: the model at initialisation).
- ``on_train_batch_end``: the step probes due at ``trainer.global_step`` (optimizer steps:
  under gradient accumulation the repeated step of the micro-batches is measured once).
- ``on_validation_end`` (never during the sanity check): held-out probes (those that need
  test points and have no schedule of their own) on the first ``n_test`` validation examples.
- ``on_train_end`` / ``on_exception``: the run is closed ``finished`` / ``interrupted``
  (Ctrl-C) / ``crashed``.

Only global rank zero measures and writes; the other ranks do nothing (no collective is ever
issued, so none can wait on rank zero). Probes call the LightningModule itself
(``pl_module(x)`` must return logits ``[B, C]``), so sharded strategies (FSDP, DeepSpeed,
model parallel), where rank zero holds a shard, are refused at setup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import lightning.pytorch as pl
except ImportError as err:  # pragma: no cover - exercised without the extra
    from splinescope.errors import SplinescopeError

    raise SplinescopeError(
        "splinescope.integrations.lightning needs Lightning: pip install 'splinescope[lightning]'"
    ) from err

from splinescope.errors import SplinescopeError
from splinescope.export.sinks import CallbackSink
from splinescope.integrations._attach import Attachment, check_resume_state, split_heldout
from splinescope.integrations._common import (
    Unpack,
    build_probes,
    context_from_points,
    points_from_loader,
    schedule_from,
)

SHARDED = ("FSDPStrategy", "DeepSpeedStrategy", "ModelParallelStrategy", "XLAFSDPStrategy")


def _first_loader(loaders: Any, where: str) -> Any:
    """The loader itself, or the first of a list / dict of loaders."""
    if isinstance(loaders, Mapping):
        loaders = list(loaders.values())
    if isinstance(loaders, Sequence) and not hasattr(loaders, "dataset"):
        if not loaders:
            raise SplinescopeError(f"{where}: the trainer has no loader")
        loaders = loaders[0]
    return loaders


class SplinescopeCallback(pl.Callback):
    """Probes at scheduled optimizer steps of a Lightning fit, stored as one splinescope run.

    Args:
        probes: ``"default"`` (accuracy at validation, local complexity on train and random
            points, weight norm: chosen from the model and data), or a list of probe objects,
            ``(probe, schedule)`` pairs and ``[[probes]]``-style tables.
        runs_dir: the run store's directory.
        name: the run's name; also this callback's ``state_key`` (two instances need two
            names).
        schedule: the step probes' schedule: a Schedule or text (``"log:40"``, ``"every:100"``)
            over the fit's ``max_steps`` (``trainer.estimated_stepping_batches``); default
            ``"log:40"``, or 10 log-spaced steps per decade when the length is unknown.
        n_train, n_test, n_random: sizes of the fixed point sets.
        loss_fn: ``loss_fn(logits, labels)`` for loss probes (default: cross-entropy).
        unpack: ``unpack(batch) -> (x, y)`` for batches that are not ``(x, y, ...)`` or a dict
            with ``x``/``y``-like keys.
        sinks: further live sinks (:mod:`splinescope.export.sinks`).
        log_to_trainer: also send every scalar to ``trainer.loggers`` as
            ``splinescope/<probe>/<key>``.
        strict: stop the fit on a probe error (default: recorded, training goes on).
        config: extra fields stored with the run's config.
    """

    def __init__(
        self,
        probes: Any = "default",
        *,
        runs_dir: str | Path = "runs",
        name: str = "lightning",
        schedule: Any = None,
        n_train: int = 1000,
        n_test: int = 1000,
        n_random: int = 500,
        loss_fn: Callable | None = None,
        unpack: Unpack | None = None,
        sinks: Sequence[Any] = (),
        log_to_trainer: bool = True,
        strict: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(name, str) or not name:
            raise SplinescopeError(f"name: expected a non-empty string, got {name!r}")
        self.probes = probes
        self.runs_dir = Path(runs_dir)
        self.name = name
        self.schedule = schedule
        self.n_train, self.n_test, self.n_random = n_train, n_test, n_random
        self.loss_fn = loss_fn
        self.unpack = unpack
        self.sinks = list(sinks)
        self.log_to_trainer = log_to_trainer
        self.strict = strict
        self.config = dict(config or {})
        self.attachment: Attachment | None = None
        self.skipped: dict[str, str] = {}
        self._resume: dict[str, Any] = {}

    @property
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name)

    @property
    def seconds(self) -> float:
        """Wall time this callback spent measuring and storing, in this process."""
        return 0.0 if self.attachment is None else self.attachment.seconds

    @property
    def run_id(self) -> str | None:
        """The store's id of the run (on global rank zero, once the fit started)."""
        return None if self.attachment is None else self.attachment.run_id

    # -- hooks --------------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Refuse sharded strategies (rank zero would measure a shard)."""
        names = {cls.__name__ for cls in type(trainer.strategy).__mro__}
        sharded = names.intersection(SHARDED)
        if sharded:
            raise SplinescopeError(
                f"SplinescopeCallback: strategy {type(trainer.strategy).__name__} shards the "
                "model across ranks, so no rank holds the whole network to measure; use DDP "
                "or a single device"
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Fix the training points, open or continue the run, measure the current step."""
        if not trainer.is_global_zero or self.attachment is not None:
            return
        import torch

        loader = _first_loader(trainer.train_dataloader, "train loader")
        x, y = points_from_loader(loader, self.n_train, unpack=self.unpack, where="train loader")
        loss_fn = self.loss_fn or torch.nn.functional.cross_entropy
        context = context_from_points(
            x, y, loss_fn=loss_fn, n_random=self.n_random, device=pl_module.device
        )
        max_steps = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if max_steps is None:
            estimated = trainer.estimated_stepping_batches
            max_steps = int(estimated) if math.isfinite(estimated) else None
        schedule = schedule_from(self.schedule, max_steps, "SplinescopeCallback schedule")
        validates = bool(trainer.enable_validation)
        entries, self.skipped = build_probes(
            self.probes, pl_module, context, max_step=max_steps, evaluations=validates
        )
        heldout = [getattr(p, "name", p) for p in split_heldout(entries)[1]]
        if heldout and not validates:
            raise SplinescopeError(
                f"SplinescopeCallback: probe(s) {heldout} need test points, which come from "
                "validation, and this fit does not validate (no val_dataloader or "
                "validation_step, or limit_val_batches=0); add validation or drop them"
            )
        sinks = list(self.sinks)
        if self.log_to_trainer and trainer.loggers:
            loggers = list(trainer.loggers)
            sinks.append(CallbackSink(lambda m, s: [lg.log_metrics(m, step=s) for lg in loggers]))
        config = {
            "trainer": "lightning",
            "model": type(pl_module).__name__,
            "max_steps": max_steps,
            "n_train": int(x.shape[0]),
            "defaults_left_out": self.skipped,
            **self.config,
        }
        self.attachment = Attachment(
            pl_module,
            entries,
            context,
            self.runs_dir,
            schedule,
            name=self.name,
            config=config,
            sinks=sinks,
            strict=self.strict,
            resume=self._resume or None,
        )
        self.attachment.step(trainer.global_step)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.attachment is not None:
            self.attachment.step(trainer.global_step)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.attachment is None or trainer.sanity_checking or not self.attachment.heldout:
            return
        loader = _first_loader(trainer.val_dataloaders, "validation loader")
        x, y = points_from_loader(
            loader, self.n_test, unpack=self.unpack, where="validation loader"
        )
        self.attachment.evaluate(trainer.global_step, x, y)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.attachment is not None:
            self.attachment.close("finished")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if self.attachment is not None:
            interrupted = isinstance(exception, KeyboardInterrupt)
            self.attachment.close("interrupted" if interrupted else "crashed")

    # -- checkpoints --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The run id and the Monitor's state (saved in Lightning checkpoints)."""
        if self.attachment is None:
            return dict(self._resume)
        return self.attachment.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the saved run when the fit resumes (``trainer.fit(..., ckpt_path=...)``)."""
        self._resume = check_resume_state(state_dict, f"SplinescopeCallback[{self.name}]")
