"""A Hugging Face ``Trainer`` callback that runs splinescope probes during ``trainer.train()``
(extra: ``splinescope[transformers]``).

::

    from splinescope.integrations.transformers import SplinescopeTrainerCallback
    trainer = Trainer(model, args, train_dataset=train, eval_dataset=test,
                      callbacks=[SplinescopeTrainerCallback(runs_dir="runs")])

When it fires (every event is ``(args, state, control, **kwargs)``; the model and loaders
come from ``kwargs``):

- ``on_train_begin``: fixes the training points (the first ``n_train`` examples of the train
  loader's dataset, collated by its own collator, read without touching the global RNG),
  opens the run or continues the one in the checkpoint being resumed, and measures the step
  probes due at ``state.global_step``.
- ``on_step_end`` (once per optimizer update): the step probes due at ``state.global_step``.
- ``on_evaluate``: held-out probes (those that need test points and have no schedule of their
  own) on the first ``n_test`` examples of the evaluation loader.
- ``on_train_end``: the run is closed ``finished``. (The Trainer has no event for a crash;
  the store marks a run whose process died as crashed.)

Only the world's process zero (``state.is_world_process_zero``) measures and writes.

Probes see the model through :class:`LogitsOf`: ``model(**{main_input_name: x}).logits``, so
a model whose main input is a float tensor (features, pixels) gets every probe, and a
token model (``input_ids``) gets the probes that do not move inputs (accuracy, weights).

The callback's state (run id, Monitor state) is saved in ``trainer_state.json`` through the
Trainer's stateful-callback mechanism (``ExportableState``): ``trainer.train(
resume_from_checkpoint=...)`` continues the same run, whether the Trainer rebuilds the
callback from that state (``restore_callback_states_from_checkpoint=True``) or keeps the one
passed in (the default; it then reads its state from the resumed ``TrainerState``).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState
except ImportError as err:  # pragma: no cover - exercised without the extra
    from splinescope.errors import SplinescopeError

    raise SplinescopeError(
        "splinescope.integrations.transformers needs transformers: pip install "
        "'splinescope[transformers]'"
    ) from err

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.integrations._attach import Attachment, check_resume_state
from splinescope.integrations._common import (
    build_probes,
    context_from_points,
    points_from_loader,
    schedule_from,
)
from splinescope.monitor.schedules import EverySchedule, ExplicitSchedule, LogSchedule

_LIVE: weakref.WeakValueDictionary[str, SplinescopeTrainerCallback] = weakref.WeakValueDictionary()


class LogitsOf(nn.Module):
    """``forward(x) = model(**{input_name: x}).logits`` (or the output's first element):
    a Hugging Face model as the ``x -> logits [B, C]`` map that probes measure."""

    def __init__(self, model: nn.Module, input_name: str) -> None:
        super().__init__()
        self.model = model
        self.input_name = input_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(**{self.input_name: x})
        logits = getattr(out, "logits", None)
        if logits is None:
            logits = out[0] if isinstance(out, (tuple, list)) else out
        return logits


def _schedule_text(schedule: Any) -> str | None:
    """The text form of a schedule (what ``trainer_state.json`` can hold)."""
    if schedule is None or isinstance(schedule, str):
        return schedule
    if isinstance(schedule, LogSchedule):
        return f"log:{schedule.n_points}"
    if isinstance(schedule, EverySchedule):
        return f"every:{schedule.k}"
    if isinstance(schedule, ExplicitSchedule):
        return "steps:" + ",".join(map(str, schedule.steps))
    raise SplinescopeError(
        f'schedule: expected text like "log:40" or a LogSchedule / EverySchedule / '
        f"ExplicitSchedule, got {schedule!r}"
    )


def _tables(probes: Any) -> Any:
    """Probes as JSON ``[[probes]]`` tables, or ``None`` when one is not a registered kind."""
    from splinescope import fields as F
    from splinescope.monitor.registry import kind_of

    if isinstance(probes, str):
        return probes
    out = []
    for entry in probes:
        if isinstance(entry, Mapping):
            out.append(dict(entry))
            continue
        probe, schedule = entry if isinstance(entry, tuple) else (entry, None)
        kind = kind_of(probe)
        if kind is None:
            return None
        import dataclasses

        table = {"kind": kind}
        table.update(
            {
                f.name: F.to_plain(getattr(probe, f.name))
                for f in dataclasses.fields(probe)
                if f.init
            }
        )
        if schedule is not None:
            table["schedule"] = _schedule_text(schedule)
        out.append(table)
    return out


class SplinescopeTrainerCallback(TrainerCallback, ExportableState):
    """Probes at scheduled optimizer steps of a ``Trainer`` run, stored as one splinescope run.

    Args:
        probes: ``"default"`` (accuracy at evaluations, local complexity on train and random
            points for a float-input piecewise-linear classifier, weight norm), or probe
            objects, ``(probe, schedule)`` pairs and ``[[probes]]``-style tables.
        runs_dir: the run store's directory.
        name: the run's name (two callbacks on one Trainer need two names).
        schedule: text (``"log:40"``, ``"every:100"``) over ``state.max_steps``, or a
            Log/Every/Explicit schedule; default ``"log:40"``.
        n_train, n_test, n_random: sizes of the fixed point sets.
        loss_fn: ``loss_fn(logits, labels)`` (default: cross-entropy).
        input_name: the model's input the points feed (default ``model.main_input_name``).
        label_name: the batch key of the labels (default ``"labels"``).
        sinks: live sinks (:mod:`splinescope.export.sinks`).
        strict: stop training on a probe error (default: recorded, training goes on).
        config: extra fields stored with the run's config.
    """

    def __init__(
        self,
        probes: Any = "default",
        *,
        runs_dir: str | Path = "runs",
        name: str = "transformers",
        schedule: Any = None,
        n_train: int = 1000,
        n_test: int = 1000,
        n_random: int = 500,
        loss_fn: Callable | None = None,
        input_name: str | None = None,
        label_name: str = "labels",
        sinks: Sequence[Any] = (),
        strict: bool = False,
        config: Mapping[str, Any] | None = None,
        restored: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise SplinescopeError(f"name: expected a non-empty string, got {name!r}")
        twin = _LIVE.get(name) if restored else None
        if twin is not None:
            # Rebuilt by the Trainer from trainer_state.json: take what JSON cannot hold
            # (probe objects, functions, sinks) from the callback the user constructed.
            probes, loss_fn, sinks, config = twin.probes, twin.loss_fn, twin.sinks, twin.config
        elif probes is None:
            raise SplinescopeError(
                f"SplinescopeTrainerCallback[{name}]: the checkpoint holds probes that are not "
                "registered kinds; pass the same callback (same name and probes) to the Trainer "
                "that resumes"
            )
        self.probes = probes
        self.runs_dir = Path(runs_dir)
        self.name = name
        self.schedule = _schedule_text(schedule)
        self.n_train, self.n_test, self.n_random = n_train, n_test, n_random
        self.loss_fn = loss_fn
        self.input_name = input_name
        self.label_name = label_name
        self.sinks = list(sinks)
        self.strict = strict
        self.config = dict(config or {})
        self.attachment: Attachment | None = None
        self.skipped: dict[str, str] = {}
        self._resume: dict[str, Any] = {}
        if not restored:
            _LIVE[name] = self

    @property
    def seconds(self) -> float:
        """Wall time this callback spent measuring and storing, in this process."""
        return 0.0 if self.attachment is None else self.attachment.seconds

    @property
    def run_id(self) -> str | None:
        return None if self.attachment is None else self.attachment.run_id

    def _unpack(self, input_name: str) -> Callable[[Any], tuple[torch.Tensor, torch.Tensor]]:
        def unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
            if not isinstance(batch, Mapping):
                raise SplinescopeError(
                    f"SplinescopeTrainerCallback: expected dict batches, got {type(batch).__name__}"
                )
            label = next((k for k in (self.label_name, "label") if k in batch), None)
            if input_name not in batch or label is None:
                raise SplinescopeError(
                    f"SplinescopeTrainerCallback: a batch has keys {sorted(batch)}; it needs the "
                    f"input {input_name!r} (input_name=) and the labels {self.label_name!r} "
                    "(label_name=)"
                )
            return batch[input_name], batch[label]

        return unpack

    # -- events -------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if not state.is_world_process_zero or self.attachment is not None:
            return
        if model is None or train_dataloader is None:
            raise SplinescopeError(
                "SplinescopeTrainerCallback: on_train_begin came without model and train_dataloader"
            )
        if not self._resume:
            self._resume = self._saved_state(state)
        input_name = self.input_name or getattr(model, "main_input_name", "input_ids")
        x, y = points_from_loader(
            train_dataloader, self.n_train, unpack=self._unpack(input_name), where="train loader"
        )
        device = next(iter(model.parameters())).device
        n_classes = getattr(getattr(model, "config", None), "num_labels", None)
        context = context_from_points(
            x,
            y,
            n_classes=n_classes,
            loss_fn=self.loss_fn or torch.nn.functional.cross_entropy,
            n_random=self.n_random,
            device=device,
        )
        max_steps = state.max_steps if state.max_steps and state.max_steps > 0 else None
        if max_steps is not None and not math.isfinite(max_steps):
            max_steps = None
        schedule = schedule_from(self.schedule, max_steps, "SplinescopeTrainerCallback schedule")
        evaluates = getattr(args.eval_strategy, "value", args.eval_strategy) != "no"
        probed = LogitsOf(model, input_name)
        entries, self.skipped = build_probes(
            self.probes, probed, context, max_step=max_steps, evaluations=evaluates
        )
        config = {
            "trainer": "transformers",
            "model": type(model).__name__,
            "max_steps": max_steps,
            "n_train": int(x.shape[0]),
            "learning_rate": args.learning_rate,
            "defaults_left_out": self.skipped,
            **self.config,
        }
        self.attachment = Attachment(
            probed,
            entries,
            context,
            self.runs_dir,
            schedule,
            name=self.name,
            config=config,
            sinks=self.sinks,
            strict=self.strict,
            resume=self._resume or None,
        )
        self.attachment.step(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.attachment is not None:
            self.attachment.step(state.global_step)

    def on_evaluate(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.attachment is None or not self.attachment.heldout:
            return
        if eval_dataloader is None:
            raise SplinescopeError("SplinescopeTrainerCallback: on_evaluate without a loader")
        input_name = self.attachment.monitor.model.input_name
        x, y = points_from_loader(
            eval_dataloader, self.n_test, unpack=self._unpack(input_name), where="eval loader"
        )
        self.attachment.evaluate(state.global_step, x, y)

    def on_train_end(self, args, state, control, **kwargs):
        if self.attachment is not None:
            self.attachment.close("finished")

    # -- checkpoints (ExportableState) --------------------------------------------------

    def _saved_state(self, state: Any) -> dict[str, Any]:
        """This callback's saved state in a resumed ``TrainerState`` (``trainer_state.json``
        keeps it whether or not ``restore_callback_states_from_checkpoint`` is set)."""
        saved = (getattr(state, "stateful_callbacks", None) or {}).get(type(self).__name__)
        for entry in saved if isinstance(saved, list) else [saved]:
            if isinstance(entry, Mapping) and entry.get("args", {}).get("name") == self.name:
                return dict(entry.get("attributes", {}).get("_resume") or {})
        return {}

    def state(self) -> dict[str, Any]:
        """JSON for ``trainer_state.json``: the arguments that rebuild this callback and the
        run it continues."""
        return {
            "args": {
                "probes": _tables(self.probes),
                "runs_dir": str(self.runs_dir),
                "name": self.name,
                "schedule": self.schedule,
                "n_train": self.n_train,
                "n_test": self.n_test,
                "n_random": self.n_random,
                "input_name": self.input_name,
                "label_name": self.label_name,
                "strict": self.strict,
                "restored": True,
            },
            "attributes": {
                "_resume": self.attachment.state_dict() if self.attachment else self._resume
            },
        }

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "_resume":
            value = check_resume_state(value, f"SplinescopeTrainerCallback[{self.name}]")
        super().__setattr__(key, value)
