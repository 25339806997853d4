"""Where users train: a Lightning callback, a Hugging Face Trainer callback and ``watch``.

- :func:`splinescope.watch` (``splinescope.integrations.watch``): a hand-written loop.
- ``splinescope.integrations.lightning.SplinescopeCallback`` (extra ``[lightning]``).
- ``splinescope.integrations.transformers.SplinescopeTrainerCallback`` (extra
  ``[transformers]``).

The trainer modules import their framework, so they are imported only on demand.
"""

from splinescope.integrations._watch import Watch, watch

__all__ = ["Watch", "watch"]
