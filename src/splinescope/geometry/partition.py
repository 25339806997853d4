"""The fields every exact partition (along a segment, in a plane) shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splinescope.errors import SplinescopeError


@dataclass(frozen=True, kw_only=True)
class Partition:
    """Activation regions of a model on a low-dimensional slice of its input space.

    Attributes:
        codes: uint8 ``[R, ceil(n_bits / 8)]``, the bit-packed activation code of each region
            (``np.packbits`` order): 1 where a ReLU-family pre-activation is > 0 (one bit per
            threshold of a two-hinge neuron), one-hot positions for max-pool windows.
        n_bits: bits in a code; ``layer_names``/``layer_kinds``/``layer_bits``: its layout.
        affine: float64 ``[R, k + 1, n_outputs]``: on region r the flattened output is
            ``affine[r, 0] + Σ_j θ_j · affine[r, j + 1]`` in the slice's k coordinates θ.
        layer_region_counts: int64 ``[L]``: regions of the partition by layers 1..l.
        rtol: the vertex tolerance used (see the module docstrings of ``plane``/``segment``).
        skipped: ``(what, reason)`` for everything the computation could not honour (e.g.
            outputs of the model other than the first); empty when nothing was left out.
    """

    codes: np.ndarray
    n_bits: int
    layer_names: tuple[str, ...]
    layer_kinds: tuple[str, ...]
    layer_bits: tuple[int, ...]
    affine: np.ndarray
    layer_region_counts: np.ndarray
    rtol: float
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def n_regions(self) -> int:
        """Number of regions R."""
        return int(self.codes.shape[0])

    def bits(self) -> np.ndarray:
        """bool ``[R, n_bits]``: the unpacked codes."""
        return np.unpackbits(self.codes, axis=1, count=self.n_bits).astype(bool)


def check_rtol(rtol: float) -> float:
    """The vertex tolerance as a float in [1e-15, 1e-3] (below that float64 rounding makes
    zero-size pieces; above it the tolerance hides real regions)."""
    try:
        value = float(rtol)
    except (TypeError, ValueError) as error:
        raise SplinescopeError(f"rtol: expected a number, got {rtol!r}") from error
    if not 1e-15 <= value <= 1e-3:
        raise SplinescopeError(f"rtol: expected a number in [1e-15, 1e-3], got {rtol!r}")
    return value
