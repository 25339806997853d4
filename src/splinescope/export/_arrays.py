"""Arrays of a run written as files (.npy, and .png for stored pictures) with an index."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splinescope.store.rundata import PNG_SIGNATURE, RunData

INDEX_NAME = "index.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_part(name: str) -> str:
    """One path component from a store name: unsafe characters become '_', never '.' or '..'."""
    part = _UNSAFE.sub("_", name).strip("_") or "_"
    return "_" + part if part in (".", "..") else part


@dataclass(frozen=True)
class ArrayFile:
    """One exported array: where it came from (step, probe, key) and its file (relative path)."""

    step: int
    probe: str
    key: str
    path: str
    shape: tuple[int, ...]
    dtype: str
    png: str | None


def is_png(array: np.ndarray) -> bool:
    """True for a 1-D uint8 array that holds a PNG file."""
    a = np.asarray(array)
    return a.ndim == 1 and a.dtype == np.uint8 and a[:8].tobytes() == PNG_SIGNATURE


def write_arrays(run: RunData, folder: Path) -> list[ArrayFile]:
    """Write every array of ``run`` under ``folder`` as <probe>/<key>/step_<step>.npy (PNG
    pictures also as .png beside it) and ``index.json`` listing them; return the listing."""
    files: list[ArrayFile] = []
    for rec in run.arrays.sort_values(["probe", "key", "step"], kind="stable").to_dict("records"):
        step, probe, key = int(rec["step"]), str(rec["probe"]), str(rec["key"])
        array = np.asarray(rec["array"])
        sub = Path(safe_part(probe), *[safe_part(p) for p in key.split("/")])
        (folder / sub).mkdir(parents=True, exist_ok=True)
        rel = sub / f"step_{step:09d}.npy"
        np.save(folder / rel, array, allow_pickle=False)
        png = None
        if is_png(array):
            png_rel = rel.with_suffix(".png")
            (folder / png_rel).write_bytes(array.tobytes())
            png = png_rel.as_posix()
        files.append(
            ArrayFile(step, probe, key, rel.as_posix(), tuple(array.shape), str(array.dtype), png)
        )
    if files:
        index = [f.__dict__ | {"shape": list(f.shape)} for f in files]
        (folder / INDEX_NAME).write_text(json.dumps(index, indent=1), encoding="utf-8")
    return files
