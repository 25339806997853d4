"""A naive re-implementation of the published local-complexity algorithm (test oracle).

Humayun et al. (ICML 2024), as described in their paper and code: forward a batch of hull
vertices, keep every hooked tensor of the whole batch, then per point compare ``sign`` at
every vertex with the first vertex; a unit counts when any differs (``sign(0)`` distinct).
Written independently and deliberately plainly; it shares no code with splinescope.
"""

from __future__ import annotations

import torch
from torch import nn


def naive_counts(
    model: nn.Module,
    hull: torch.Tensor,
    modules: list[nn.Module],
    *,
    use_input: bool = False,
    batch_size: int = 16,
) -> torch.Tensor:
    """Counts ``[N, len(modules)]`` of units with non-constant sign over each point's vertices.

    ``use_input`` reads each module's input (e.g. a ReLU's pre-activation) instead of its output;
    outputs are kept without copying, as the published code does (no in-place activations).
    """
    n, v = hull.shape[:2]
    captured: dict[int, list[torch.Tensor]] = {}
    handles = []
    for i, module in enumerate(modules):
        if use_input:
            handles.append(
                module.register_forward_pre_hook(
                    lambda m, inp, i=i: captured.setdefault(i, []).append(inp[0].clone())
                )
            )
        else:
            handles.append(
                module.register_forward_hook(
                    lambda m, inp, out, i=i: captured.setdefault(i, []).append(out)
                )
            )
    out = torch.zeros(n, len(modules), dtype=torch.int64)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                captured.clear()
                chunk = hull[start : start + batch_size]
                b = chunk.shape[0]
                model(chunk.reshape(b * v, *hull.shape[2:]))
                for i in range(len(modules)):
                    signs = torch.sign(captured[i][0]).reshape(b, v, -1)
                    differs = signs[:, 1:] != signs[:, :1]
                    out[start : start + b, i] = differs.any(dim=1).sum(dim=-1)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return out
