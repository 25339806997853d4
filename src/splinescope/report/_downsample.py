"""Fewer points to draw for a long curve; the stored data are never touched.

The rule (min-max buckets, for drawing only): a curve of at most ``MAX_DRAWN`` points is
drawn as it is. A longer one is cut into ``BUCKETS`` buckets of equal width along the x axis
as drawn (log10 of the step on the report's log axis), and only these points are kept, in
their original order: the first and the last point of the curve, and in each bucket the
point of smallest and of largest value and its first NaN (so that a gap stays a gap). Every
extreme of the curve within a bucket is kept exactly, so a spike or a dip never disappears;
at most ``3 * BUCKETS + 2`` points remain.
"""

from __future__ import annotations

import numpy as np

MAX_DRAWN = 1000
BUCKETS = 300


def downsample_indices(
    x: np.ndarray,
    y: np.ndarray,
    *,
    log_x: bool = True,
    max_drawn: int = MAX_DRAWN,
    buckets: int = BUCKETS,
) -> np.ndarray:
    """Indices (int64, ascending) of the points of the curve ``(x, y)`` to draw.

    ``x`` [T] increasing (steps, > 0 where ``log_x``), ``y`` [T] (NaN allowed). All
    indices when ``T <= max_drawn``; otherwise the min-max bucket rule of the module.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    if n <= max_drawn:
        return np.arange(n, dtype=np.int64)
    pos = np.log10(np.maximum(x, np.finfo(np.float64).tiny)) if log_x else x
    lo, hi = float(pos[0]), float(pos[-1])
    width = (hi - lo) / buckets if hi > lo else 1.0
    bucket = np.minimum(((pos - lo) / width).astype(np.int64), buckets - 1)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    finite = np.isfinite(y)
    # Sort by (bucket, value) once: the first and last finite entry of each bucket are its
    # minimum and maximum.
    idx = np.flatnonzero(finite)
    if idx.size:
        order = idx[np.lexsort((y[idx], bucket[idx]))]
        b = bucket[order]
        first = np.r_[True, b[1:] != b[:-1]]
        last = np.r_[b[1:] != b[:-1], True]
        keep[order[first]] = True
        keep[order[last]] = True
    gaps = np.flatnonzero(~finite)
    if gaps.size:
        b = bucket[gaps]
        keep[gaps[np.r_[True, b[1:] != b[:-1]]]] = True
    return np.flatnonzero(keep)
