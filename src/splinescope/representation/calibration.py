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
    lo, hi = torch.aminmax(p)  # NaN propagates: one pass checks range and finiteness
    if not (float(lo) >= 0.0 and float(hi) <= 1.0):
        if not bool(torch.isfinite(p).all()):
            raise SplinescopeError("probs: non-finite value(s) (NaN or inf)")
        raise SplinescopeError("probs: values must lie in [0, 1] (pass probabilities, not logits)")
    row_err = float((p @ torch.ones(c, dtype=p.dtype, device=p.device) - 1.0).abs().max())
    if row_err > atol:
        raise SplinescopeError(
            f"probs: rows must sum to 1 (largest deviation {row_err:.3g} > atol {atol:g})"
        )
    y = labels_1d("labels", labels, n, p.device)
    if int(y.max()) >= c:
        raise SplinescopeError(f"labels: class {int(y.max())} out of range for {c} columns")
    conf32 = p.amax(dim=1)
    p_true32 = p.gather(1, y[:, None]).squeeze(1)
    hit = p_true32 == conf32
    # the prediction is the first class attaining the maximum: settle ties row by row
    rows = hit.nonzero().squeeze(1)
    tied = rows[(p[rows] == conf32[rows, None]).sum(dim=1) > 1]
    if tied.numel():
        hit[tied] = p[tied].argmax(dim=1) == y[tied]
    conf = conf32.to(torch.float64)
    correct = hit.to(torch.float64)
    edges = bin_edges(conf, n_bins, binning)
    if binning == "width":  # arithmetic guess, then corrected against the stated edges
        idx = (conf * n_bins).to(torch.long).clamp_(0, n_bins - 1)
        idx -= (conf < edges[idx]).to(torch.long)
        idx += ((idx < n_bins - 1) & (conf >= edges[(idx + 1).clamp_(max=n_bins)])).to(torch.long)
    else:
        idx = torch.searchsorted(edges[1:-1].contiguous(), conf, right=True)
    counts = torch.zeros(n_bins, dtype=torch.float64, device=p.device).index_add_(
        0, idx, torch.ones_like(conf)
    )
    conf_sum = torch.zeros_like(counts).index_add_(0, idx, conf)
    acc_sum = torch.zeros_like(counts).index_add_(0, idx, correct)
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
    p_true = p_true32.to(torch.float64)
    nll = float(-torch.log(p_true32).to(torch.float64).mean())
    # sum_c (p_c - [y = c])^2 = sum_c p_c^2 - 2 p_y + 1; row sums in p's dtype, mean in float64
    sq = (p.unsqueeze(1) @ p.unsqueeze(2)).reshape(n).to(torch.float64)
    brier = float((sq - 2.0 * p_true + 1.0).mean())
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
        accuracy_overall=float(correct.mean()),
        n=n,
        variant=f"top-label {NORM_NAMES[norm]}, {n_bins} equal-{binning} bins",
    )
