"""Shared pieces of the reliability tests: a tiny run config, subprocess runs of the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

DRIVER = Path(__file__).with_name("_driver.py")

TINY_TOML = """
name = "{name}"
dataset = "digits"
n_train = 100
width = 16
depth = 1
batch_size = 50
steps = {steps}
schedule = "{schedule}"
{extra}
[[probes]]
kind = "accuracy"
"""


def tiny_toml(
    path: Path,
    *,
    name: str = "tiny",
    steps: int = 1200,
    schedule: str = "every:100",
    extra: str = "",
) -> Path:
    """A config file for a run of a few seconds: digits, a 64-16-10 MLP, accuracy only."""
    path.write_text(TINY_TOML.format(name=name, steps=steps, schedule=schedule, extra=extra))
    return path


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def spawn(*args: object, **env: str) -> subprocess.Popen:
    """``splinescope ARGS`` (through the test driver) in a subprocess, output piped."""
    return subprocess.Popen(
        [sys.executable, str(DRIVER), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(**env),
    )


def run_cli(*args: object, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``splinescope ARGS`` in a subprocess, to completion."""
    return subprocess.run(
        [sys.executable, str(DRIVER), *map(str, args)],
        capture_output=True,
        text=True,
        env=child_env(**env),
        timeout=timeout,
    )


def wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float = 60) -> list[str]:
    """Read the child's output until a line starts with ``prefix``; the lines read."""
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited before {prefix!r}: {''.join(lines)}")
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no {prefix!r} within {timeout} s: {''.join(lines)}")
