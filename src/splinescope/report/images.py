"""Stored pictures (partition slices) as PNG data URIs to embed in the report."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np

from splinescope.errors import SplinescopeError
from splinescope.store.rundata import PNG_SIGNATURE, RunData


@dataclass(frozen=True)
class StoredImage:
    """One embedded picture: the run, probe, key and step it came from and its data URI."""

    run_id: str
    probe: str
    key: str
    step: int
    data_uri: str
    n_stored: int = 1


def png_bytes(array: np.ndarray, where: str = "array") -> bytes:
    """PNG bytes from a stored array: a 1-D uint8 array holding a PNG file, or an image
    [H, W] (grey), [H, W, 3] (RGB) or [H, W, 4] (RGBA), uint8 0..255 or float 0..1."""
    a = np.asarray(array)
    if a.ndim == 1:
        data = a.astype(np.uint8, copy=False).tobytes()
        if not data.startswith(PNG_SIGNATURE):
            raise SplinescopeError(f"{where}: a 1-D image array must hold PNG bytes")
        return data
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4)):
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.image as mpimg

        if a.dtype == np.uint8:
            img = a
        else:
            img = np.clip(a.astype(np.float64), 0.0, 1.0)
        buf = io.BytesIO()
        mpimg.imsave(buf, img, format="png", cmap="gray" if a.ndim == 2 else None)
        return buf.getvalue()
    raise SplinescopeError(
        f"{where}: cannot show an array of shape {a.shape} as an image "
        "(expected PNG bytes [B], [H, W], [H, W, 3] or [H, W, 4])"
    )


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def partition_images(run: RunData, max_steps: int = 6) -> list[StoredImage]:
    """The run's stored pictures (array keys its probes declare as images, e.g. the
    partition slices), up to ``max_steps`` steps per key spread over training (first and
    last kept), by probe and key, then step."""
    from splinescope.report.declared import declared

    a = run.arrays
    pairs_seen = list(dict.fromkeys(zip(a["probe"].tolist(), a["key"].tolist(), strict=True)))
    out = []
    for probe, key in pairs_seen:
        family = declared(run, probe).outputs.array(key)
        if family is None or not family.image:
            continue
        pairs = run.array_steps(probe, key)
        n_stored = len(pairs)
        if len(pairs) > max_steps:
            idx = np.unique(np.round(np.linspace(0, len(pairs) - 1, max_steps)).astype(int))
            pairs = [pairs[i] for i in idx]
        for step, arr in pairs:
            where = f"run {run.run_id} probe {probe!r} key {key!r} step {step}"
            uri = data_uri(png_bytes(arr, where))
            out.append(StoredImage(run.run_id, probe, key, step, uri, n_stored))
    return out
