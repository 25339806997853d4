"""Fixtures of the monitor tests: a tiny MLP and a context of a few hundred points."""

from __future__ import annotations

import pytest
from monitor_helpers import tiny_context, tiny_mlp
from torch import nn

from splinescope.monitor import ProbeContext


@pytest.fixture
def context() -> ProbeContext:
    return tiny_context()


@pytest.fixture
def model() -> nn.Module:
    return tiny_mlp()
