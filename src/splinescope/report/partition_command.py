"""``splinescope partition``: the exact partition of a plane, for a stored run or a saved model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from splinescope.errors import SplinescopeError

SPLITS = ("train", "test")


def parse_plane(text: str) -> tuple[str, list[int]]:
    """``"train:0,1,2"`` -> ``("train", [0, 1, 2])``; the split and three sample indices."""
    split, _, rest = text.partition(":")
    try:
        indices = [int(part) for part in rest.split(",")]
    except ValueError:
        indices = []
    if split not in SPLITS or len(indices) != 3:
        raise SplinescopeError(
            f"--plane: expected SPLIT:I,J,K with SPLIT in {SPLITS} and three sample indices "
            f"(e.g. train:0,1,2), got {text!r}"
        )
    return split, indices


def _pick_step(steps: list[int], step: int | None, run_id: str) -> int:
    if not steps:
        raise SplinescopeError(
            f"run {run_id}: no model snapshots were kept (runs store them at every probe step "
            "unless checkpoint=false); pass --model FILE.pt instead"
        )
    if step is None:
        return steps[-1]
    if step not in steps:
        near = sorted(steps, key=lambda s: abs(s - step))[:5]
        raise SplinescopeError(
            f"--step: run {run_id} has no snapshot at step {step}; nearest: {sorted(near)}"
        )
    return step


def _load_model_file(path: Path, model: nn.Module | None, trust_pickle: bool = False) -> nn.Module:
    """The model in ``path``: weights (a ``state_dict``, loaded with ``weights_only=True``)
    put into ``model``; a whole pickled ``nn.Module`` only with ``trust_pickle`` (unpickling
    runs whatever code the file holds). Files found in a runs directory are only ever loaded
    as weights (store.checkpoints)."""
    if not path.is_file():
        raise SplinescopeError(f"--model: no file at {str(path)!r}")
    if trust_pickle:
        loaded = torch.load(path, map_location="cpu", weights_only=False)
    else:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise SplinescopeError(
                f"--model: {str(path)!r} is not plain weights (a state_dict); loading it would "
                f"unpickle objects ({type(exc).__name__}). If you made this file yourself and "
                "it holds a whole nn.Module, pass --trust-pickle: that runs any code the file "
                "holds"
            ) from None
    if isinstance(loaded, nn.Module):
        return loaded
    if isinstance(loaded, dict) and model is not None:
        state = loaded.get("model", loaded)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise SplinescopeError(
                f"--model: the weights in {str(path)!r} do not fit the run's architecture: {exc}"
            ) from None
        return model
    raise SplinescopeError(
        f"--model: {str(path)!r} holds a {type(loaded).__name__}; expected a state_dict together "
        "with RUN (whose config builds the architecture), or a pickled nn.Module with "
        "--trust-pickle"
    )


def partition_command(
    run: str | None,
    runs_dir: Path,
    *,
    plane: str = "train:0,1,2",
    output: Path = Path("partition.png"),
    step: int | None = None,
    model_file: Path | None = None,
    dataset: str | None = None,
    trust_pickle: bool = False,
) -> Path:
    """Draw the exact partition of the plane through three samples and save it to ``output``.

    With ``run``: the run's data and its model at snapshot ``step`` (default: the last), or the
    weights in ``model_file``. Without ``run``: ``model_file`` (a pickled module, which needs
    ``trust_pickle=True``) and an embedded ``dataset`` name. Returns the written path.
    """
    from splinescope.data import load_dataset
    from splinescope.models import build_model
    from splinescope.report.partition_plot import partition_figure
    from splinescope.store.checkpoints import load_snapshot, load_snapshot_spec, snapshot_steps

    split, indices = parse_plane(plane)
    if run is None:
        if model_file is None or dataset is None:
            raise SplinescopeError("give RUN, or --model FILE.pt together with --data DATASET")
        data = load_dataset(dataset)
        model = _load_model_file(Path(model_file), None, trust_pickle)
        label = f"{Path(model_file).name} on {dataset}"
    else:
        from splinescope.store import get_run

        row = get_run(runs_dir, run)
        spec = load_snapshot_spec(runs_dir, row["run_id"])
        data_args, model_args = dict(spec["data"]), dict(spec["model"])
        data = load_dataset(data_args.pop("name"), **data_args)
        model = build_model(model_args.pop("kind"), **model_args)
        if model_file is not None:
            model = _load_model_file(Path(model_file), model, trust_pickle)
            label = f"{row['name']} ({row['run_id']}), {Path(model_file).name}"
        else:
            step = _pick_step(snapshot_steps(runs_dir, row["run_id"]), step, row["run_id"])
            model.load_state_dict(load_snapshot(runs_dir, row["run_id"], step))
            label = f"{row['name']} ({row['run_id']}), step {step:,}"
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    if max(indices) >= len(x) or min(indices) < 0:
        raise SplinescopeError(
            f"--plane: indices {indices} out of range for {split} ({len(x)} samples)"
        )
    points = x[indices].to(torch.float32)
    labels = [f"{split} {i} (y={int(y[i])})" for i in indices]
    figure = partition_figure(model.cpu(), points, anchor_labels=labels, title=label)
    output = Path(output)
    if output.parent and not output.parent.exists():
        raise SplinescopeError(f"-o: directory {str(output.parent)!r} does not exist")
    figure.savefig(output, dpi=110)
    return output.resolve()
