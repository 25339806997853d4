"""Tiny sweep specs for tests: digits, a narrow MLP, 30 steps, cheap probes, no attacks."""

from __future__ import annotations

from typing import Any

from splinescope.sweep import parse_spec

TINY_SET: dict[str, Any] = {
    "n_train": 120,
    "width": 16,
    "steps": 30,
    "batch_size": 40,
    "schedule": "every:10",
    "n_random": 40,
    "probes.lc.n_points": 30,
    "probes.lc.n_vertices": 8,
    "probes.fgsm": "off",
    "probes.pgd": "off",
}


def tiny_spec(name: str = "tiny", *, set_: dict | None = None, **values: Any):
    """A 4-point spec (init_scale x seed) unless ``values`` say otherwise."""
    table: dict[str, Any] = {
        "name": name,
        "base": "grok-digits",
        "threads": 1,
        "set": {**TINY_SET, **(set_ or {})},
        "grid": {"init_scale": [1, 4]},
        "seeds": [0, 1],
    }
    table.update(values)
    return parse_spec(table)
