"""Checkpoints and model snapshots of a run, kept beside the store in ``runs_dir/<run_id>/``.

- ``checkpoint.pt``: model, optimizer, sampler and global RNG states at the last probe step,
  for an exact resume. Loaded with ``weights_only=True`` (tensors and plain containers only),
  so a file placed in a shared runs directory cannot run code.
- ``models/step_<S>.pt``: the model's ``state_dict`` at probe step S (partition pictures);
  ``models/spec.json``: how to rebuild the architecture (``splinescope.models.build_model``
  arguments) and its data (``splinescope.data.load_dataset`` arguments), so readers need only
  the store, the models and the data, never the training code.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from splinescope.errors import SplinescopeError

CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "models"
SPEC = "spec.json"


def checkpoint_path(runs_dir: str | os.PathLike, run_id: str) -> Path:
    """Where a run's checkpoint is kept."""
    return Path(runs_dir) / run_id / CHECKPOINT


def snapshot_path(runs_dir: str | os.PathLike, run_id: str, step: int) -> Path:
    """Where the model's weights at probe step ``step`` are kept."""
    return Path(runs_dir) / run_id / SNAPSHOTS / f"step_{step:09d}.pt"


def snapshot_steps(runs_dir: str | os.PathLike, run_id: str) -> list[int]:
    """The probe steps whose model weights were kept, ascending."""
    folder = Path(runs_dir) / run_id / SNAPSHOTS
    return sorted(int(p.stem.removeprefix("step_")) for p in folder.glob("step_*.pt"))


def _atomic_save(obj: Any, path: Path) -> None:
    """Write ``obj`` to ``path`` whole or not at all; a full disk or any other write failure
    raises SplinescopeError naming the path (the previous file, if any, is kept)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as RuntimeError
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise SplinescopeError(
            f"cannot write {str(path)!r}: {reason} (is the disk full?); the previous "
            "version of the file, if any, is kept"
        ) from exc


def save_snapshot(path: Path, model: nn.Module) -> None:
    """Write the model's ``state_dict`` atomically to ``path``."""
    _atomic_save(model.state_dict(), path)


def load_snapshot(runs_dir: str | os.PathLike, run_id: str, step: int) -> dict[str, Any]:
    """The ``state_dict`` kept at ``step`` (on the CPU)."""
    path = snapshot_path(runs_dir, run_id, step)
    if not path.is_file():
        raise SplinescopeError(f"run {run_id}: no model snapshot at step {step} ({str(path)!r})")
    return torch.load(path, map_location="cpu", weights_only=True)


def save_snapshot_spec(
    runs_dir: str | os.PathLike, run_id: str, model: Mapping[str, Any], data: Mapping[str, Any]
) -> None:
    """Record how to rebuild the run's model (``build_model`` arguments, ``kind`` included)
    and data (``load_dataset`` arguments, ``name`` included)."""
    path = Path(runs_dir) / run_id / SNAPSHOTS / SPEC
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(SPEC + ".tmp")
    tmp.write_text(json.dumps({"model": dict(model), "data": dict(data)}, indent=1))
    os.replace(tmp, path)


def load_snapshot_spec(runs_dir: str | os.PathLike, run_id: str) -> dict[str, Any]:
    """What :func:`save_snapshot_spec` wrote."""
    path = Path(runs_dir) / run_id / SNAPSHOTS / SPEC
    if not path.is_file():
        raise SplinescopeError(
            f"run {run_id}: no model spec at {str(path)!r} (the run kept no snapshots); pass "
            "--model FILE.pt with --data DATASET instead"
        )
    return json.loads(path.read_text())


def save_checkpoint(
    path: Path,
    *,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler_state: Mapping[str, Any],
    monitor_state: Mapping[str, Any] | None = None,
) -> None:
    """Write model, optimizer, sampler, monitor and global RNG states atomically to ``path``."""
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler": dict(sampler_state),
        "monitor": json.dumps(monitor_state or {}),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": _numpy_rng(),
        "python_rng": json.dumps(_python_rng()),
    }
    _atomic_save(state, path)


def _numpy_rng() -> dict[str, Any]:
    name, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "key": torch.from_numpy(key.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _python_rng() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def load_checkpoint(
    path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Restore model, optimizer and global RNGs from :func:`save_checkpoint`'s file; return
    ``(step, sampler state, monitor state)``. Tensors are mapped to the model's device."""
    if not path.exists():
        raise SplinescopeError(f"--resume: no checkpoint at {str(path)!r}; cannot resume this run")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise SplinescopeError(
            f"--resume: {str(path)!r} is not a splinescope checkpoint that loads safely "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"].cpu())
    rng = state["numpy_rng"]
    np.random.set_state(
        (
            rng["name"],
            rng["key"].cpu().numpy().astype(np.uint32),
            rng["pos"],
            rng["has_gauss"],
            rng["cached"],
        )
    )
    version, internal, gauss = json.loads(state["python_rng"])
    random.setstate((version, tuple(internal), gauss))
    sampler = {
        k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in state["sampler"].items()
    }
    return int(state["step"]), sampler, json.loads(state["monitor"])
