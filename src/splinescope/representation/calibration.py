"""Top-label calibration error, reliability-diagram data, NLL and Brier score.

Binning: bin ``b`` holds confidences in ``[edges[b], edges[b+1])``; the last bin is closed,
``[edges[-2], 1]``, so a confidence of exactly 1.0 falls in the last bin (there is no extra
bin). ``binning="width"``: equal-width edges on [0, 1]. ``binning="mass"``: interior edges
at the confidence quantiles (equal counts up to ties), outer edges 0 and 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from splinescope.errors import SplinescopeError
from splinescope.representation._checks import choice, labels_1d

NORMS = ("l1", "l2", "max")
BINNINGS = ("width", "mass")
NORM_NAMES = {
    "l1": "ECE = sum_b (n_b/n) |acc_b - conf_b|",
    "l2": "RMSCE = sqrt(sum_b (n_b/n) (acc_b - conf_b)^2)",
    "max": "MCE = max over non-empty bins of |acc_b - conf_b|",
}


@dataclass(frozen=True)
class Calibration:
    """Calibration of top-label confidences against labels.

    Per bin (``[n_bins]``): ``counts``, mean ``confidence`` and ``accuracy`` (0 where the bin
    is empty; see ``counts``). ``edges`` ``[n_bins + 1]``. ``nll`` is the mean negative log
    probability of the true class (inf if some true class has probability 0); ``brier`` the
    mean over points of ``sum_c (p_c - [y = c])^2``.
    """

    error: float
    norm: str
    binning: str
    edges: torch.Tensor
    counts: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    nll: float
    brier: float
    accuracy_overall: float
    n: int
    variant: str
    bins_rule: str = "[e_b, e_b+1) with the last bin closed [e_-2, 1]"


def bin_edges(conf: torch.Tensor, n_bins: int, binning: str) -> torch.Tensor:
    """Float64 bin edges ``[n_bins + 1]`` from 0 to 1."""
    if binning == "width":
        return torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=conf.device)
    q = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=conf.device)
    edges = torch.quantile(conf, q)
    edges[0], edges[-1] = 0.0, 1.0
    return edges


#: Rows per block of :func:`row_stats`: about 2**19 probabilities (2 MiB in float32), so every
#: temporary of a block stays in cache instead of being a fresh page-faulted allocation.
BLOCK_ELEMENTS = 1 << 19


@dataclass(frozen=True)
class RowStats:
    """One blocked pass over ``probs`` ``[n, C]``: value range, largest ``|row sum - 1|``,
    confidence, probability of the true class, whether the first argmax is the label, and the
    sum of all squared probabilities (float64)."""

    lo: float
    hi: float
    row_err: float
    conf: torch.Tensor
    p_true: torch.Tensor
    hit: torch.Tensor
    sum_sq: float


def row_stats(p: torch.Tensor, y: torch.Tensor) -> RowStats:
    """:class:`RowStats` of ``p`` ``[n, C]`` with labels ``y`` ``[n]`` (labels in range)."""
    n, c = p.shape
    step = max(1, BLOCK_ELEMENTS // c)
    ones = torch.ones(c, dtype=p.dtype, device=p.device)
    conf = torch.empty(n, dtype=p.dtype, device=p.device)
    p_true = torch.empty(n, dtype=p.dtype, device=p.device)
    hit = torch.empty(n, dtype=torch.bool, device=p.device)
    # a tie at the maximum needs two entries equal to it: 2 conf <= row sum (with rounding)
    slack = 1.0 + 4 * c * torch.finfo(p.dtype).eps
    parts = []
    for i in range(0, n, step):
        b, yb = p[i : i + step], y[i : i + step]
        cb = torch.amax(b, dim=1, out=conf[i : i + step])
        tb = torch.gather(b, 1, yb[:, None], out=p_true[i : i + step, None]).squeeze(1)
        hb = torch.eq(tb, cb, out=hit[i : i + step])
        sums = b @ ones
        s_lo, s_hi = torch.aminmax(sums)
        # the prediction is the first class attaining the maximum: among the hits that could
        # be ties, rows attaining the maximum more than once are settled by argmax
        maybe = (hb & (2 * cb <= sums * slack)).nonzero().squeeze(1)
        if maybe.numel():
            sub = b[maybe]
            tied = maybe[(sub == cb[maybe, None]).sum(dim=1) > 1]
            if tied.numel():
                hb[tied] = b[tied].argmax(dim=1) == yb[tied]
        part = [torch.amin(b), torch.amax(cb), s_lo, s_hi, b.square().sum()]
        parts.append(torch.stack([t.to(torch.float64) for t in part]))
    stats = torch.stack(parts).cpu()
    lo, hi = stats[:, 0].min(), stats[:, 1].max()
    row_err = torch.maximum(stats[:, 3].max() - 1.0, 1.0 - stats[:, 2].min())
    return RowStats(
        lo=float(lo),
        hi=float(hi),
        row_err=float(row_err),
        conf=conf,
        p_true=p_true,
        hit=hit,
        sum_sq=float(stats[:, 4].sum()),
    )


def width_bins(conf: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Bin index ``[n]`` of confidences under equal-width float64 ``edges``: ``floor(conf * B)``
    in ``conf``'s dtype (float32 at least), with the points near an edge (within 1e-4 bin
    widths, far beyond rounding) placed by comparison with the stated edges in float64."""
    n_bins = edges.numel() - 1
    work = conf if conf.dtype in (torch.float32, torch.float64) else conf.float()
    scaled = work * n_bins
    idx = scaled.to(torch.long).clamp_(0, n_bins - 1)
    near = ((scaled - scaled.round()).abs() < 1e-4).nonzero().squeeze(1)
    if near.numel():
        exact = conf[near].to(torch.float64)
        idx[near] = torch.searchsorted(edges[1:-1].contiguous(), exact, right=True)
    return idx


def calibration_error(
    probs: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    binning: str = "width",
    atol: float = 1e-3,
) -> Calibration:
    """Calibration of class probabilities ``probs`` ``[n, C]`` against ``labels`` ``[n]``.

    Rows of ``probs`` must lie in [0, 1] and sum to 1 within ``atol``. Confidence is the
    largest probability, the prediction its class (the first on ties).
    """
    choice("norm", norm, NORMS)
    choice("binning", binning, BINNINGS)
    if not (isinstance(n_bins, int) and n_bins >= 1):
        raise SplinescopeError(f"n_bins: expected a positive integer, got {n_bins!r}")
    p = probs if isinstance(probs, torch.Tensor) else torch.as_tensor(probs)
    if not p.is_floating_point():
        p = p.to(torch.float64)
    p = p.detach()
    if p.ndim != 2 or p.shape[1] < 2 or p.shape[0] == 0:
        raise SplinescopeError(f"probs: expected shape [n, C] with C >= 2, got {tuple(p.shape)}")
    n, c = p.shape
    y = labels_1d("labels", labels, n, p.device)
    if int(y.max()) >= c:
        raise SplinescopeError(f"labels: class {int(y.max())} out of range for {c} columns")
    rows = row_stats(p, y)
    if not (rows.lo >= 0.0 and rows.hi <= 1.0):  # NaN fails both
        if not bool(torch.isfinite(p).all()):
            raise SplinescopeError("probs: non-finite value(s) (NaN or inf)")
        raise SplinescopeError("probs: values must lie in [0, 1] (pass probabilities, not logits)")
    if rows.row_err > atol:
        raise SplinescopeError(
            f"probs: rows must sum to 1 (largest deviation {rows.row_err:.3g} > atol {atol:g})"
        )
    conf_p, p_true_p, hit = rows.conf, rows.p_true, rows.hit
    conf = conf_p.to(torch.float64)
    edges = bin_edges(conf, n_bins, binning)
    if binning == "width":
        idx = width_bins(conf_p, edges)
    else:
        idx = torch.searchsorted(edges[1:-1].contiguous(), conf, right=True)
    # counts and hits in one pass: bin 2b holds the misses of bin b, 2b + 1 its hits
    key = hit.to(torch.long).add_(idx, alpha=2)
    tally = torch.bincount(key, minlength=2 * n_bins).view(n_bins, 2)
    counts = tally.sum(dim=1).to(torch.float64)
    acc_sum = tally[:, 1].to(torch.float64)
    conf_sum = torch.bincount(idx, weights=conf, minlength=n_bins)
    safe = counts.clamp(min=1.0)
    mean_conf, mean_acc = conf_sum / safe, acc_sum / safe
    gap = (mean_acc - mean_conf).abs()
    w = counts / n
    if norm == "l1":
        err = float((w * gap).sum())
    elif norm == "l2":
        err = float((w * gap.square()).sum().sqrt())
    else:
        err = float(gap[counts > 0].max())
    p_true = p_true_p.to(torch.float64)
    nll = -float(torch.log(p_true_p).sum(dtype=torch.float64)) / n
    # mean_i sum_c (p_ic - [y_i = c])^2 = (sum_ic p_ic^2) / n - 2 mean_i p_iy + 1
    brier = rows.sum_sq / n - 2.0 * float(p_true.mean()) + 1.0
    return Calibration(
        error=err,
        norm=norm,
        binning=binning,
        edges=edges.cpu(),
        counts=counts.to(torch.long).cpu(),
        confidence=mean_conf.cpu(),
        accuracy=mean_acc.cpu(),
        nll=nll,
        brier=brier,
        accuracy_overall=float(acc_sum.sum()) / n,
        n=n,
        variant=f"top-label {NORM_NAMES[norm]}, {n_bins} equal-{binning} bins",
    )
