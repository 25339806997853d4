"""Is the process that owns a "running" run still alive? And what environment does a run record?"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import sys
from typing import Any

#: A "running" run owned by another host whose heartbeat is older than this reads as crashed.
DEFAULT_STALE_AFTER_S = 15 * 60.0


def hostname() -> str:
    """This machine's host name, as recorded with every run."""
    return socket.gethostname()


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first), or None where there is no such file."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its closing parenthesis.
    return stat[stat.rfind(")") + 2 :].split()


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None.

    Together with the pid it identifies one process: a pid reused by a later process has a
    different start time.
    """
    fields = _proc_stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None  # field 22


def pid_alive(pid: int, start: str | None = None) -> bool:
    """True if process ``pid`` runs on this host (a zombie, killed but not yet reaped by its
    parent, counts as dead) and, if ``start`` is given, is the process that started then."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return False
    fields = _proc_stat(pid)
    if fields is None:
        # No /proc here (macOS, Windows): os.kill is all we can know.
        return not os.path.isdir("/proc/self")
    if fields[0] in ("Z", "X"):
        return False
    return start is None or len(fields) <= 19 or fields[19] == start


def owner_dead(
    owner_host: str,
    owner_pid: int,
    owner_start: str | None,
    heartbeat: float,
    now: float,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> bool:
    """Whether a run marked "running" has lost its process.

    On this host the process table decides (pid plus start time). For a run written from
    another host (a shared runs directory) only the heartbeat can tell: older than
    ``stale_after_s`` seconds means dead.
    """
    if owner_host == hostname():
        return not pid_alive(owner_pid, owner_start)
    return now - heartbeat > stale_after_s


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(seed: int | None, device: str | None) -> dict[str, Any]:
    """What a run records about where it ran: versions, platform, device, host, pid, seed.

    Versions are read from package metadata, so recording them imports nothing heavy.
    """
    return {
        "python": platform.python_version(),
        "splinescope": _version("splinescope"),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "platform": platform.platform(),
        "executable": sys.executable,
        "device": device,
        "hostname": hostname(),
        "pid": os.getpid(),
        "seed": seed,
    }
