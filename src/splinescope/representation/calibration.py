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
from splinescope.representation._checks import as_tensor, choice, labels_1d

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
    p = as_tensor("probs", probs).to(torch.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise SplinescopeError(f"probs: expected shape [n, C] with C >= 2, got {tuple(p.shape)}")
    n, c = p.shape
    if bool((p < 0).any()) or bool((p > 1).any()):
        raise SplinescopeError("probs: values must lie in [0, 1] (pass probabilities, not logits)")
    row_err = float((p.sum(dim=1) - 1.0).abs().max())
    if row_err > atol:
        raise SplinescopeError(
            f"probs: rows must sum to 1 (largest deviation {row_err:.3g} > atol {atol:g})"
        )
    y = labels_1d("labels", labels, n, p.device)
    if int(y.max()) >= c:
        raise SplinescopeError(f"labels: class {int(y.max())} out of range for {c} columns")
    conf, pred = p.max(dim=1)
    correct = (pred == y).to(torch.float64)
    edges = bin_edges(conf, n_bins, binning)
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
    p_true = p.gather(1, y[:, None]).squeeze(1)
    nll = float(-torch.log(p_true).mean())
    onehot = torch.nn.functional.one_hot(y, c).to(torch.float64)
    brier = float((p - onehot).square().sum(dim=1).mean())
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
