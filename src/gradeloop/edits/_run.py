"""Running a task's tests on a tree in the command sandbox (``graders/_cmdbox.py``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ._tree import Tree

OUTPUT_TAIL = 8000  # characters of the command's output kept
DISK_MB = 256
NPROC = 64
KILL_GRACE_S = 5.0  # past the time limit, the parent kills what PID 1 has not


@dataclass
class TestRun:
    """How a test command ended: ``passed`` (exit status 0 within the limits), its
    ``returncode`` (None when killed by a signal), ``timed_out``, the tail of its output
    (secrets scrubbed), and the sandbox mechanisms that were in effect."""

    __test__ = False  # not a pytest test class

    passed: bool
    returncode: int | None
    timed_out: bool
    output: str
    mechanisms: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # the sandbox could not start the command


def run_tests(tree: Tree, command: list[str], *, timeout: float = 60, memory_mb: int = 1024) -> TestRun:
    """Run ``command`` with ``tree.path`` as its working directory, in a sandbox: no network,
    an unprivileged uid (as root), ``timeout`` s of wall-clock time, ``memory_mb`` of address
    space, nothing writable outside the tree and its scratch directory. ``"python"`` as the
    first word means the interpreter gradeloop runs on. Returns a TestRun."""
    from ..graders import _sandbox

    if not command or not all(isinstance(word, str) for word in command):
        raise ValueError("the test command must be a non-empty list of strings")
    if command[0] in ("python", "python3"):
        command = [sys.executable, *command[1:]]
    uid = _sandbox.claim_uid()
    try:
        return _launch(tree, command, timeout, memory_mb, uid)
    finally:
        if uid is not None:
            _sandbox.kill_uid(uid)
            _sandbox._release_uid(uid)


def _launch(tree: Tree, command: list[str], timeout: float, memory_mb: int, uid: int | None) -> TestRun:
    from ..graders import _cmdbox, _sandbox

    cores = _sandbox._cores_for(0)
    env = _sandbox._minimal_env(str(tree.scratch), len(cores))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    # no __pycache__ or .pytest_cache in the tree: its files stay what the edit made them
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", PYTEST_ADDOPTS="-p no:cacheprovider")
    os.chmod(tree.root, 0o711)  # the sandbox uid must reach the tree
    report_r, report_w = os.pipe()
    config = {"tree": str(tree.path), "scratch": str(tree.scratch), "uid": uid, "command": command,
              "env": env, "timeout": float(timeout), "memory_mb": int(memory_mb), "cores": cores,
              "disk_mb": DISK_MB, "nproc": NPROC, "report_fd": report_w}
    here = os.path.dirname(os.path.abspath(_sandbox.__file__))
    with tempfile.TemporaryFile() as output:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", _cmdbox.BOOT, here, json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, cwd=str(tree.path),
                env=env, start_new_session=True, pass_fds=(report_w,))
        finally:
            os.close(report_w)
        timed_out = _wait(proc, timeout + KILL_GRACE_S)
        with os.fdopen(report_r, "rb") as handle:
            report = _report(handle.read())
        return _result(report, timed_out, _tail(output))


def _wait(proc: subprocess.Popen, limit: float) -> bool:
    """Wait for the sandbox; past ``limit`` kill its process group. Returns whether it was killed."""
    try:
        proc.wait(limit)
        return False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        return True


def _report(data: bytes) -> dict[str, Any]:
    try:
        report = json.loads(data.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError, UnicodeDecodeError):
        return {}
    return report if isinstance(report, dict) else {}


def _tail(output: Any) -> str:
    from ..redact import scrub

    output.seek(0, os.SEEK_END)
    size = output.tell()
    output.seek(max(0, size - OUTPUT_TAIL * 4))
    text = output.read().decode("utf-8", "replace")[-OUTPUT_TAIL:]
    return scrub(text)


def _result(report: dict[str, Any], killed: bool, output: str) -> TestRun:
    if not report:
        return TestRun(False, None, killed, output, error="the sandbox ended without a report")
    timed_out = killed or bool(report.get("timed_out"))
    returncode = report.get("returncode")
    error = report.get("setup_error")
    passed = returncode == 0 and not timed_out and not error
    if error:
        output = (output + f"\n[sandbox: the command could not start: {error}]").lstrip("\n")
    return TestRun(passed, returncode, timed_out, output, report.get("mechanisms", {}), error)
