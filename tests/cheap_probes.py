"""Cheap probe settings for tests that train: small point sets, few vertices and steps."""

from __future__ import annotations

from splinescope.train import TrainConfig, apply_overrides

CHEAP_FIELDS = {
    "lc": {"n_points": 40, "n_vertices": 8},
    "adversarial": {"n_points": 30, "steps": 2},
    "codes": {"n_points": 60},
    "hessian": {"n_points": 32, "k": 2},
    "boundary_lc": {"n_points": 40, "n_vertices": 8},
}
#: Kinds too slow for tests that train presets (an exact 784-D plane partition takes seconds);
#: they are removed there and tested on small models (tests/monitor/test_paper_probes.py).
CHEAP_OFF = ("migration",)


def cheap_overrides(config: TrainConfig) -> dict[str, object]:
    """``probes.NAME.FIELD`` overrides making every probe of ``config`` cheap."""
    overrides: dict[str, object] = {
        f"probes.{table.get('name', table['kind'])}.{field}": value
        for table in config.probes
        for field, value in CHEAP_FIELDS.get(table["kind"], {}).items()
    }
    for table in config.probes:
        if table["kind"] in CHEAP_OFF:
            overrides[f"probes.{table.get('name', table['kind'])}"] = "off"
    return overrides


def cheap(config: TrainConfig, **changes: object) -> TrainConfig:
    """``config`` with cheap probes (and ``changes``) applied."""
    return apply_overrides(apply_overrides(config, changes), cheap_overrides(config))


def cheap_args(config: TrainConfig) -> list[str]:
    """The same as ``--set`` command-line arguments."""
    return [arg for k, v in cheap_overrides(config).items() for arg in ("--set", f"{k}={v}")]
