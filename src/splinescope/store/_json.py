"""JSON for the store's config, env and summary columns (numpy scalars and paths accepted)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from splinescope.errors import SplinescopeError


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"{type(obj).__name__} {obj!r:.80} is not JSON-serialisable")


def dumps(obj: Mapping[str, Any], what: str) -> str:
    """``obj`` as JSON text; SplinescopeError naming ``what`` (e.g. "config") if it cannot be."""
    if not isinstance(obj, Mapping):
        raise SplinescopeError(f"{what} must be a dict, got {type(obj).__name__}")
    try:
        return json.dumps(dict(obj), default=_default, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise SplinescopeError(f"{what} cannot be stored as JSON: {exc}") from exc


def loads(text: str | None) -> dict[str, Any]:
    """The dict stored as JSON text (an empty dict for NULL)."""
    return {} if text is None else json.loads(text)
