"""A run's config flattened into hyper-parameters that tracking tools accept."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from splinescope.store.rundata import flatten


def hparam_value(value: Any) -> bool | int | float | str:
    """bool, int, float and str pass; anything else (None, lists, ...) becomes its JSON text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return json.dumps(value, default=str)


def flat_params(config: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """{"optim": {"lr": 1e-3}, "widths": [200, 200]} -> {"optim.lr": 1e-3, "widths": "[200, 200]"}."""
    return {k: hparam_value(v) for k, v in flatten(config).items()}
