"""Adversarial attacks used as probes: FGSM and PGD in l_inf and l_2, clamped to the data domain.

>>> import torch
>>> from splinescope.models import MLP
>>> from splinescope.robustness import adversarial_accuracy
>>> model, x, y = MLP(4, 3), torch.rand(8, 4), torch.arange(8) % 3
>>> acc = adversarial_accuracy(model, x, y, attack="pgd", eps=0.1, step_size=0.025, steps=10,
...                            domain=(0.0, 1.0))
>>> 0.0 <= acc <= 1.0
True
"""

from splinescope.robustness._attacks import ATTACKS, NORMS, adversarial_accuracy, fgsm, pgd

__all__ = ["ATTACKS", "NORMS", "adversarial_accuracy", "fgsm", "pgd"]
