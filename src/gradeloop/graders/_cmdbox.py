"""The command sandbox: runs one command (a task's tests) on a directory tree, then exits.

Started as ``python -I -B -c BOOT DIR CONFIG`` (see :data:`BOOT`) with the command's output
already on its stdout and stderr, and a pipe (``config["report_fd"]``) for its one-line JSON
report. It reuses the python grader sandbox's building blocks (:mod:`_sandbox`): the same
namespaces, mounts, uid scheme and seccomp assembler, with the rules a test command needs:

* network: a new, empty network namespace (no interface, not even loopback), and a seccomp
  filter that refuses ``socket`` (``socketpair`` stays: event loops use it internally) and
  ``connect``/``bind``/``listen``/``accept``.
* processes: ``execve`` and ``fork`` are allowed (a test runner starts subprocesses);
  ``ptrace``, mounts, namespaces, ``bpf``, keyrings, ``io_uring`` and module calls are refused
  by seccomp. A new PID namespace whose PID 1 is this program: when it exits, every process the
  command left is killed by the kernel.
* filesystem (as root): a private mount namespace in which everything is read-only except the
  tree and its scratch directory (home and temp), and a fresh ``/dev/shm``; then the command
  drops to a uid of its own (no groups), with ``no_new_privs``.
* limits: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``, ``RLIMIT_FSIZE``, ``RLIMIT_NPROC`` (own uid),
  no core dumps, and the wall-clock time limit (PID 1 kills the command; the parent kills the
  whole process group and uid two seconds later).

Standard library only; never imports gradeloop.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from typing import Any

if __package__:  # imported by gradeloop (for BOOT)
    from . import _sandbox as sb
else:  # the sandbox program itself
    import _sandbox as sb

BOOT = "import sys; sys.path.insert(0, sys.argv[1]); import _cmdbox; del sys.path[0]; _cmdbox.main()"
ALLOWED = ("execve", "execveat", "socketpair")  # refused for python graders, needed by test commands
MB = 1024 * 1024


def main() -> None:
    """Set up the sandbox, run the command, write the report, exit."""
    config = json.loads(sys.argv[-1])
    report = config["report_fd"]
    os.set_inheritable(report, False)  # the command must not write (or forge) the report
    mechanisms: dict[str, str] = {"environment": "minimal (PATH, locale, HOME/TMPDIR = scratch directory)"}
    root = os.geteuid() == 0
    try:
        libc: sb._Libc | None = sb._Libc()
    except (OSError, AttributeError):
        libc = None
    flags = sb._unshare(libc, root, mechanisms)
    mechanisms["network"] = mechanisms["network"].replace("audit hook", "seccomp (socket refused)")
    sb._fork_zygote(())  # from here on this is PID 1 of the new PID namespace (when there is one)
    readable = _mounts(libc, config, flags, root, mechanisms)
    uid = config["uid"] if root and readable and config["uid"] is not None else None
    if uid is not None:
        for directory in (config["tree"], config["scratch"]):
            _chown_tree(directory, uid)
    mechanisms["user"] = f"own uid {uid}, no groups, no_new_privs" if uid is not None else "unchanged"
    program = sb.seccomp_program(os.uname().machine, False, ALLOWED) if libc is not None else None
    mechanisms["syscalls"] = ("seccomp-BPF: socket, connect, bind, listen, accept, ptrace, mount, namespaces, bpf, "
                              "keyrings, io_uring, module calls refused" if program else "none (no seccomp here)")
    result = _run(config, libc, uid, program)
    os.write(report, (json.dumps({**result, "mechanisms": mechanisms}) + "\n").encode())
    os._exit(0)


def _mounts(libc: sb._Libc | None, config: dict[str, Any], flags: int, root: bool,
            mechanisms: dict[str, str]) -> bool:
    """A fresh /proc and (as root) the read-only view; returns whether the uid can read the interpreter."""
    mechanisms["pids"] = "none (no PID namespace)"
    mechanisms["filesystem"] = "none (no mount namespace): only ordinary permissions"
    if libc is None or not flags & sb.CLONE_NEWNS:
        return False
    try:
        libc.mount(None, "/", None, sb.MS_REC | sb.MS_PRIVATE)
        if flags & sb.CLONE_NEWPID:
            libc.mount("proc", "/proc", "proc", sb.MS_NOSUID | sb.MS_NODEV | sb.MS_NOEXEC)
            mechanisms["pids"] = "kernel (own PID namespace, fresh /proc; its processes die with PID 1)"
    except OSError as exc:
        mechanisms["pids"] = f"PID namespace without a fresh /proc: {exc}"
    if not root:
        return False
    writable = (config["tree"], config["scratch"])
    try:
        for directory in writable:
            libc.mount(directory, directory, None, sb.MS_BIND | sb.MS_REC)
        stage = os.path.join(config["scratch"], ".stage")
        os.mkdir(stage)
        sb._expose_hidden(libc, stage)
        os.rmdir(stage)
        libc.mount_setattr("/", True, sb.MOUNT_ATTR_RDONLY, 0)
        for directory in writable:
            libc.mount_setattr(directory, False, 0, sb.MOUNT_ATTR_RDONLY)
        mechanisms["filesystem"] = "kernel (read-only mount namespace; only the tree and its scratch dir are writable)"
    except OSError as exc:
        mechanisms["filesystem"] = f"none: private mounts failed: {exc}"
        return False
    try:
        libc.mount("tmpfs", "/dev/shm", "tmpfs", sb.MS_NOSUID | sb.MS_NODEV, "mode=1777,size=64m")
    except OSError:
        pass
    return all(sb._others_can_read(path) for path in sb._needed_paths()) and _reachable(config["tree"]) \
        and _reachable(config["scratch"])


def _reachable(path: str) -> bool:
    """Whether another uid can enter every directory above ``path`` (it will own ``path``)."""
    parent = os.path.dirname(path.rstrip("/"))
    return sb._hidden_parent(parent + "/x") is None


def _chown_tree(directory: str, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(directory):
        os.lchown(dirpath, uid, uid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def _run(config: dict[str, Any], libc: sb._Libc | None, uid: int | None, program: Any) -> dict[str, Any]:
    """Fork the command, wait for it up to the time limit, and say how it ended."""
    errors_r, errors_w = os.pipe()  # close-on-exec: EOF without a message means exec worked
    pid = os.fork()
    if pid == 0:
        os.close(errors_r)
        try:
            _child(config, libc, uid, program)
        except BaseException as exc:
            os.write(errors_w, f"{type(exc).__name__}: {exc}".encode()[:2000])
        os._exit(127)
    os.close(errors_w)
    status, timed_out = _wait(pid, config["timeout"])
    with os.fdopen(errors_r, "rb") as handle:
        setup_error = handle.read().decode("utf-8", "replace")
    if os.getpid() == 1:
        _kill_all()
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    return {"returncode": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "timed_out": timed_out, "setup_error": setup_error or None}


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            _kill_all() if os.getpid() == 1 else None
            return os.waitpid(pid, 0)[1], True
        time.sleep(0.02)


def _kill_all() -> None:
    """As PID 1 of the namespace: every other process in it."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass


def _child(config: dict[str, Any], libc: sb._Libc | None, uid: int | None, program: Any) -> None:
    """In the command's process: limits, uid, seccomp, then exec (returns only by raising)."""
    os.setpgid(0, 0)
    os.chdir(config["tree"])
    memory = config["memory_mb"] * MB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(config["timeout"] * len(config["cores"])) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (config["disk_mb"] * MB, config["disk_mb"] * MB))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        os.sched_setaffinity(0, config["cores"])
    except (AttributeError, OSError):
        pass
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if (os.getuid(), os.geteuid()) != (uid, uid):
            raise OSError("setuid did not take effect")
        resource.setrlimit(resource.RLIMIT_NPROC, (config["nproc"], config["nproc"]))
    if libc is not None:
        libc.prctl_set(sb.PR_SET_NO_NEW_PRIVS)
        libc.prctl_set(sb.PR_SET_PDEATHSIG, signal.SIGKILL)
    if program is not None:
        libc.seccomp_installer(*program)()
    command = config["command"]
    os.execvpe(command[0], command, config["env"])
