"""Which process runs a run, and whether it still does (so that a runner killed with
``kill -9`` is noticed by the next reader instead of leaving the run ``in_progress``)."""

from __future__ import annotations

import os
import socket
from typing import Any

__all__ = ["runner_identity", "runner_alive"]


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time in clock ticks since boot)`` from /proc; None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def runner_identity() -> dict[str, Any]:
    """This process as a run's runner: pid, host, boot id and start time (the last two tell a
    reused pid from the original)."""
    stat = _stat(os.getpid())
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot": _boot_id(),
            "start": stat[1] if stat else None}


def runner_alive(runner: dict[str, Any]) -> bool | None:
    """True while the process that ``runner`` (a :func:`runner_identity`) names still runs,
    False once it is gone; None when this machine cannot tell (it ran on another host)."""
    if runner.get("host") != socket.gethostname():
        return None
    boot = _boot_id()
    if runner.get("boot") and boot and runner["boot"] != boot:
        return False  # the machine restarted since
    pid = runner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive, unless /proc says it is another one
    stat = _stat(pid)
    if stat is None:
        return True
    state, start = stat
    if state == "Z":
        return False  # exited, not yet reaped
    return runner.get("start") in (None, start)
