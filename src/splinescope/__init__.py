"""splinescope: a microscope for deep networks in training.

The public surface is kept small and deliberate; everything else lives in subpackages.
Names are imported lazily (PEP 562), so ``import splinescope.store`` does not pay for torch.

>>> import torch, splinescope
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
>>> lc = splinescope.local_complexity(model, torch.randn(16, 4), radius=0.1, n_vertices=8)
>>> lc.counts.shape
torch.Size([16, 1])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from splinescope.errors import NoPartitionUnitsError, SplinescopeError

__version__ = "0.1.0"

_LAZY = {
    "LocalComplexity": "splinescope.geometry.complexity",
    "local_complexity": "splinescope.geometry.complexity",
    "describe": "splinescope.nn",
    "record_states": "splinescope.nn",
    "load_dataset": "splinescope.data",
    "RunStore": "splinescope.store",
    "load_runs": "splinescope.store",
    "load_metrics": "splinescope.store",
    "load_arrays": "splinescope.store",
    "regions_in_plane": "splinescope.geometry.exact",
    "regions_on_segment": "splinescope.geometry.exact",
    "local_affine_map": "splinescope.geometry.exact",
    "watch": "splinescope.integrations",
}

__all__ = [
    "LocalComplexity",
    "NoPartitionUnitsError",
    "RunStore",
    "SplinescopeError",
    "__version__",
    "describe",
    "load_arrays",
    "load_dataset",
    "load_metrics",
    "load_runs",
    "local_affine_map",
    "local_complexity",
    "record_states",
    "regions_in_plane",
    "regions_on_segment",
    "watch",
]

if TYPE_CHECKING:
    from splinescope.data import load_dataset
    from splinescope.geometry.complexity import LocalComplexity, local_complexity
    from splinescope.geometry.exact import local_affine_map, regions_in_plane, regions_on_segment
    from splinescope.integrations import watch
    from splinescope.nn import describe, record_states
    from splinescope.store import RunStore, load_arrays, load_metrics, load_runs


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'splinescope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
