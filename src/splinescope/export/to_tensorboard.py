"""Export one stored run to TensorBoard event files (extra: ``splinescope[tensorboard]``).

Layout under the destination folder: ``<name>_<id8>/`` holds the event file with
every scalar under the tag "<probe>/<key>" (the store's names) at its step, the config as
hparams (nested keys dotted) and as text, stored pictures as images, and ``arrays/`` with
every array as .npy (``arrays/index.json`` lists step, probe, key of each file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splinescope.errors import SplinescopeError
from splinescope.export._arrays import ArrayFile, safe_part, write_arrays
from splinescope.export._params import flat_params
from splinescope.store.rundata import RunData

EXTRA_HINT = "pip install 'splinescope[tensorboard]'"


@dataclass(frozen=True)
class TensorBoardExport:
    """Where the run was written and how much: scalars (count), arrays (files), hparams (count)."""

    logdir: Path
    n_scalars: int
    arrays: tuple[ArrayFile, ...]
    n_hparams: int


def run_folder_name(run: RunData) -> str:
    """The sub-folder of the TensorBoard logdir that holds one run: "<name>_<first 8 of id>"."""
    return f"{safe_part(run.name)}_{safe_part(run.run_id[:8])}"


def _decode_png(data: bytes) -> np.ndarray:
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(data), format="png")
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3], dtype=np.float32)


def export_tensorboard(run: RunData, dest: str | Path) -> TensorBoardExport:
    """Write ``run`` into ``dest/<name>_<id8>/`` as TensorBoard events; return what was written.

    Raises SplinescopeError if tensorboard is not installed, ``dest`` is not a writable
    folder, or the run's folder there already holds an export.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError as err:
        raise SplinescopeError(
            f"export --to tensorboard needs the tensorboard package: {EXTRA_HINT}"
        ) from err
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise SplinescopeError(f"dest {str(dest)!r} is a file; give a folder for TensorBoard logs")
    logdir = dest / run_folder_name(run)
    if logdir.exists() and any(logdir.glob("events.out.tfevents.*")):
        raise SplinescopeError(
            f"dest {str(dest)!r} already holds an export of run {run.run_id!r} in {str(logdir)!r}; "
            "remove it or choose another folder"
        )
    try:
        logdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SplinescopeError(
            f"dest {str(dest)!r} is not writable: {err.strerror or err}"
        ) from err

    params = flat_params(run.config)
    metrics = run.metrics.sort_values(["step", "probe", "key"], kind="stable")
    tags = [f"{p}/{k}" for p, k in zip(metrics["probe"], metrics["key"], strict=True)]
    last = dict(zip(tags, metrics["value"].astype(float), strict=True))
    writer = SummaryWriter(log_dir=str(logdir))
    try:
        for tag, step, value in zip(tags, metrics["step"], metrics["value"], strict=True):
            writer.add_scalar(tag, float(value), global_step=int(step))
        if params:
            for summary in hparams(params, last):
                writer.file_writer.add_summary(summary)
        info = {"run_id": run.run_id, "name": run.name, "status": run.status}
        for name, obj in (
            ("run", info),
            ("config", dict(run.config)),
            ("env", dict(run.env)),
            ("summary", dict(run.summary)),
        ):
            text = json.dumps(obj, indent=2, default=str)
            writer.add_text(f"splinescope/{name}", f"```\n{text}\n```")
        files = write_arrays(run, logdir / "arrays")
        for f in files:
            if f.png is not None:
                img = _decode_png((logdir / "arrays" / f.png).read_bytes())
                writer.add_image(f"{f.probe}/{f.key}", img, global_step=f.step, dataformats="HWC")
    except OSError as err:
        raise SplinescopeError(
            f"dest {str(dest)!r}: writing the TensorBoard export failed: {err.strerror or err}"
        ) from err
    finally:
        writer.close()
    return TensorBoardExport(logdir.resolve(), len(tags), tuple(files), len(params))
