"""Neural collapse NC1-NC4 (Papyan, Han & Donoho 2020) of last-layer features.

Statistics (float64; ``C`` classes present in ``labels``, ``N`` points, global mean ``mu_G``
over all points, class means ``mu_c``, centred means ``m_c = mu_c - mu_G``)::

    Sigma_W = 1/N sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T
    Sigma_B = 1/C sum_c m_c m_c^T
    NC1     = Tr(Sigma_W Sigma_B^+) / C                   (Papyan et al.)
    NC1_tr  = Tr(Sigma_W) / Tr(Sigma_T)                   (trace-ratio variant, in [0, 1])

NC2 uses the centred means: equinorm = std/mean of ``|m_c|`` (std with Bessel's correction),
equiangularity = std of the cosines between distinct ``m_c``, max-angle = mean of
``|cos + 1/(C-1)|``. NC3 = ``| W/|W|_F - M/|M|_F |_F^2`` (``W`` the classifier rows of the
present classes, ``M`` the centred means). NC4 = fraction of points whose nearest class mean
differs from the classifier's prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.representation._checks import as_tensor, labels_1d

NC1_NAME = "Tr(Sigma_W Sigma_B^+)/C (Papyan, Han & Donoho 2020)"
NC1_TRACE_NAME = "Tr(Sigma_W)/Tr(Sigma_T) (within / total variance)"
NORMALISATION = (
    "Sigma_W averaged over all N points; Sigma_B over the C class means with equal weights; "
    "global mean over all points; pseudo-inverse cut at s_max * max(C, d) * eps"
)


@dataclass(frozen=True)
class NeuralCollapse:
    """NC1-NC4 and the NC2 parts; the classifier-dependent fields are ``None`` without one."""

    nc1: float
    nc1_trace_ratio: float
    nc2_equinorm: float
    nc2_equiangularity: float
    nc2_max_angle: float
    nc2_w_equinorm: float | None
    nc2_w_equiangularity: float | None
    nc2_w_max_angle: float | None
    nc3: float | None
    nc4: float | None
    classes: tuple[int, ...]
    n: int
    nc1_variant: str = NC1_NAME
    nc1_trace_ratio_variant: str = NC1_TRACE_NAME
    normalisation: str = NORMALISATION


def _classifier(classifier, d: int, device) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(classifier, nn.Linear):
        w, b = classifier.weight, classifier.bias
    elif isinstance(classifier, tuple | list) and len(classifier) == 2:
        w, b = classifier
    else:
        w, b = classifier, None
    w = as_tensor("classifier", w).to(device=device, dtype=torch.float64)
    if w.ndim != 2 or w.shape[1] != d:
        raise SplinescopeError(
            f"classifier: expected a weight of shape [classes, {d}], got {tuple(w.shape)}"
        )
    if b is not None:
        b = as_tensor("classifier bias", b).to(device=device, dtype=torch.float64)
        if b.shape != (w.shape[0],):
            raise SplinescopeError(
                f"classifier: bias shape {tuple(b.shape)} does not match weight {tuple(w.shape)}"
            )
    return w, b


def _nc2(vectors: torch.Tensor, name: str) -> tuple[float, float, float]:
    c = vectors.shape[0]
    norms = vectors.norm(dim=1)
    if not bool((norms > 0).all()):
        raise SplinescopeError(f"{name}: a class vector has zero norm; NC2 is undefined")
    unit = vectors / norms[:, None]
    cos = unit @ unit.T
    iu = torch.triu_indices(c, c, offset=1, device=vectors.device)
    off = cos[iu[0], iu[1]]
    equiang = float(off.std()) if off.numel() > 1 else 0.0
    return float(norms.std() / norms.mean()), equiang, float((off + 1.0 / (c - 1)).abs().mean())


def neural_collapse(
    features: torch.Tensor,
    labels: torch.Tensor,
    classifier: nn.Linear | torch.Tensor | tuple | None = None,
) -> NeuralCollapse:
    """NC1-NC4 of ``features`` ``[n, d]`` with integer ``labels`` ``[n]``.

    ``classifier`` (optional): an ``nn.Linear`` or a weight ``[K, d]`` (or ``(weight, bias)``)
    whose row ``k`` scores class ``k``; it enables NC3, NC4 and the classifier's NC2.
    """
    h = as_tensor("features", features)
    if h.ndim != 2:
        raise SplinescopeError(f"features: expected shape [n, d], got {tuple(h.shape)}")
    h = h.to(torch.float64)
    n, d = h.shape
    y = labels_1d("labels", labels, n, h.device)
    classes, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
    c = classes.numel()
    if c < 2:
        raise SplinescopeError(f"labels: neural collapse needs at least 2 classes, got {c}")
    sums = torch.zeros(c, d, dtype=torch.float64, device=h.device).index_add_(0, inverse, h)
    means = sums / counts[:, None].to(torch.float64)
    mu_g = h.mean(dim=0)
    m = means - mu_g
    resid = h - means[inverse]
    # Tr(Sigma_W Sigma_B^+) through the SVD of the centred means: Sigma_B = V S^2/C V^T
    _, s, vt = torch.linalg.svd(m, full_matrices=False)
    tol = float(s[0]) * max(c, d) * torch.finfo(torch.float64).eps
    keep = s > tol
    if not bool(keep.any()):
        raise SplinescopeError("features: all class means coincide (Sigma_B = 0); NC1 is undefined")
    proj = resid @ vt[keep].T  # [n, r]
    within_along = proj.square().sum(dim=0) / n  # v_k^T Sigma_W v_k
    nc1 = float((within_along * c / s[keep].square()).sum() / c)
    tr_w = float(resid.square().sum() / n)
    tr_t = float((h - mu_g).square().sum() / n)
    nc2 = _nc2(m, "features")

    w_nc2: tuple[float | None, float | None, float | None] = (None, None, None)
    nc3 = nc4 = None
    if classifier is not None:
        w, b = _classifier(classifier, d, h.device)
        if int(classes.max()) >= w.shape[0]:
            raise SplinescopeError(
                f"classifier: has {w.shape[0]} rows but labels include class {int(classes.max())}"
            )
        wc = w[classes]
        w_nc2 = _nc2(wc, "classifier")
        nc3 = float((wc / wc.norm() - m / m.norm()).square().sum())
        logits = h @ w.T + (0.0 if b is None else b)
        pred = logits.argmax(dim=1)
        nearest = classes[torch.cdist(h, means).argmin(dim=1)]
        nc4 = float((pred != nearest).to(torch.float64).mean())
    return NeuralCollapse(
        nc1=nc1,
        nc1_trace_ratio=tr_w / tr_t,
        nc2_equinorm=nc2[0],
        nc2_equiangularity=nc2[1],
        nc2_max_angle=nc2[2],
        nc2_w_equinorm=w_nc2[0],
        nc2_w_equiangularity=w_nc2[1],
        nc2_w_max_angle=w_nc2[2],
        nc3=nc3,
        nc4=nc4,
        classes=tuple(int(k) for k in classes),
        n=n,
    )
