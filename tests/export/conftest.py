"""A run store with one synthetic finished run (every probe, arrays) and one live run."""

from __future__ import annotations

import pytest

from report import synthetic as S


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs")
    S.store_run(path, "grok-digits", last=2000)
    S.store_run(path, "live-run", last=300, seed=1, status=None, summary=None, with_arrays=False)
    return path
