"""One run as the report and the exporters see it: a snapshot read from the run store."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from splinescope.errors import SplinescopeError

#: Stored pictures are 1-D uint8 arrays holding PNG files, which start with these bytes.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

METRIC_COLUMNS = ("step", "probe", "key", "value")
ARRAY_COLUMNS = ("step", "probe", "key", "array")


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in columns})


@dataclass(frozen=True, eq=False)
class RunData:
    """A run's record: identity, status, config, environment, summary and its logged data.

    ``metrics`` has columns step, probe, key, value (one scalar per row); ``arrays`` has
    columns step, probe, key, array (``np.ndarray``); ``errors`` holds the probe failures
    as the store returns them; ``probe_specs`` the probes' recorded specs (kind, config,
    schedule, declared outputs; see ``load_probes``). ``status`` is "running", "finished",
    "crashed", "interrupted" or "diverged"; ``divergence`` is ``{"step", "tensor", "value"}``
    for a run that diverged (else None); times are whatever the store records (shown with
    ``format_time``).
    """

    run_id: str
    name: str
    status: str
    config: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)
    metrics: pd.DataFrame = field(default_factory=lambda: _empty(METRIC_COLUMNS))
    arrays: pd.DataFrame = field(default_factory=lambda: _empty(ARRAY_COLUMNS))
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)
    created_at: Any = None
    updated_at: Any = None
    probe_specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    divergence: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for attr, columns in (("metrics", METRIC_COLUMNS), ("arrays", ARRAY_COLUMNS)):
            frame = getattr(self, attr)
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise SplinescopeError(
                    f"RunData.{attr} of run {self.run_id!r} lacks column(s) {missing}; "
                    f"expected {list(columns)}"
                )

    @property
    def is_live(self) -> bool:
        """True while the run is still being written (status "running")."""
        return self.status == "running"

    @property
    def has_metrics(self) -> bool:
        """True if at least one scalar has been logged."""
        return len(self.metrics) > 0

    @property
    def last_step(self) -> int | None:
        """The largest step with a logged scalar or array, or None if nothing is logged."""
        steps = [int(f["step"].max()) for f in (self.metrics, self.arrays) if len(f)]
        return max(steps) if steps else None

    def series(self, probe: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Steps (int64, [T], ascending) and values (float64, [T]) of one scalar."""
        m = self.metrics
        sel = m[(m["probe"] == probe) & (m["key"] == key)].sort_values("step", kind="stable")
        return sel["step"].to_numpy(np.int64), sel["value"].to_numpy(np.float64)

    def keys(self, probe: str) -> list[str]:
        """The scalar keys logged under ``probe``, in first-logged order."""
        m = self.metrics
        return list(dict.fromkeys(m.loc[m["probe"] == probe, "key"].tolist()))

    def probes(self) -> list[str]:
        """The probes with at least one logged scalar, in first-logged order."""
        return list(dict.fromkeys(self.metrics["probe"].tolist()))

    def array_steps(self, probe: str, key: str) -> list[tuple[int, np.ndarray]]:
        """(step, array) pairs of one array key, by ascending step."""
        a = self.arrays
        sel = a[(a["probe"] == probe) & (a["key"] == key)].sort_values("step", kind="stable")
        return [(int(s), np.asarray(x)) for s, x in zip(sel["step"], sel["array"], strict=True)]

    def last_value(self, probe: str, key: str) -> tuple[int, float] | None:
        """(step, value) of the last logged value of one scalar, or None."""
        steps, values = self.series(probe, key)
        if len(steps) == 0:
            return None
        return int(steps[-1]), float(values[-1])


def load_run_data(
    runs_dir: str | Path,
    run: str,
    arrays: Callable[[Mapping[str, Any], str, str], bool] | None = None,
) -> RunData:
    """Read one run from the store at ``runs_dir``.

    ``run`` is a run id, a unique id prefix or a run name (unknown: SplinescopeError listing
    close matches). ``arrays(probe_specs, probe, key)`` says which arrays to load (None:
    all).
    """
    from splinescope import store

    runs_dir = Path(runs_dir)
    if not runs_dir.exists():
        raise SplinescopeError(f"runs_dir {str(runs_dir)!r} does not exist: no run store there")
    row = store.get_run(runs_dir, run)
    run_id = row["run_id"]
    metrics = store.load_metrics(runs_dir, run_id)
    specs = store.load_probes(runs_dir, run_id)
    wanted = (
        None
        if arrays is None
        else [(p, k) for p, k in store.array_keys(runs_dir, run_id) if arrays(specs, p, k)]
    )
    if wanted is None:
        loaded = store.load_arrays(runs_dir, run_id)
    else:
        parts = [store.load_arrays(runs_dir, run_id, probe=p, key=k) for p, k in wanted]
        parts = [p for p in parts if len(p)]
        loaded = pd.concat(parts, ignore_index=True) if parts else _empty(ARRAY_COLUMNS)
    errors = store.load_errors(runs_dir, run_id)
    return RunData(
        run_id=run_id,
        name=str(row["name"]),
        status=str(row["status"]),
        config=dict(row.get("config") or {}),
        env=dict(row.get("env") or {}),
        summary=dict(row.get("summary") or {}),
        metrics=metrics,
        arrays=loaded,
        errors=errors,
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
        probe_specs=specs,
        divergence=row.get("divergence"),
    )


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


def format_time(value: Any) -> str:
    """A store timestamp (epoch seconds, datetime, ISO string or None) as readable UTC text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = _dt.datetime.fromtimestamp(float(value), tz=_dt.timezone.utc)
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def format_number(value: Any) -> str:
    """A summary or metric value for display: integers with thousands separators, else 4 s.f."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4g}"
    return str(value)
