"""Runs ``splinescope run`` in a subprocess the way a user or a batch scheduler does, with
two test hooks set from the environment (the CLI itself is untouched):

- ``DRIVER_READY_AT=S``: print ``READY <S>`` once step S has been measured, then slow every
  later step by ``DRIVER_PAUSE_S`` seconds (default 0.002), so that a signal sent on READY
  lands in the middle of the run.
- ``DRIVER_SLEEP_AT=S`` with ``DRIVER_SLEEP_S``: at step S print ``SLEEPING`` and sleep that
  long inside the step (a long step: a second signal must end it at once).

Usage: python _driver.py ARGS...   (the arguments of ``splinescope``)
"""

from __future__ import annotations

import os
import sys
import time

import torch

import splinescope.train as train_module
from splinescope.cli import app

torch.set_num_threads(1)
READY_AT = int(os.environ.get("DRIVER_READY_AT", "-1"))
PAUSE_S = float(os.environ.get("DRIVER_PAUSE_S", "0.002"))
SLEEP_AT = int(os.environ.get("DRIVER_SLEEP_AT", "-1"))
SLEEP_S = float(os.environ.get("DRIVER_SLEEP_S", "0"))
real_train = train_module.train


def hooked_train(*args, on_progress=None, progress_every=100, **kwargs):
    ready = [False]

    def progress(info):
        if on_progress is not None and (info.measured or info.step % progress_every == 0):
            on_progress(info)
        if info.step == READY_AT and info.measured:
            ready[0] = True
            print(f"READY {info.step}", flush=True)
        elif ready[0]:
            time.sleep(PAUSE_S)
        if info.step == SLEEP_AT:
            print("SLEEPING", flush=True)
            time.sleep(SLEEP_S)

    return real_train(*args, on_progress=progress, progress_every=1, **kwargs)


train_module.train = hooked_train
app(sys.argv[1:], prog_name="splinescope")
