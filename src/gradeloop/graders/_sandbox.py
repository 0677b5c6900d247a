"""A sandboxed Python worker process for ``python`` graders, and the parent's handle on it.

This file is both a module (the parent side: :class:`WorkerProcess`) and the worker program
itself, started as ``python -I -B _sandbox.py CONFIG``. The worker side uses the standard
library only and never imports gradeloop.

The worker protects the host in layers; each is tried in order and the ones that took effect
are reported in the handshake (``WorkerProcess.info["mechanisms"]``):

* network: a new network namespace (``unshare(CLONE_NEWNET)``, as root; otherwise inside a new
  user namespace when the kernel allows it), which has no interfaces up, not even loopback.
  An audit hook refuses every ``socket.*`` event in any case.
* filesystem: as root, a private mount namespace in which every mount is read-only
  (``mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)``) and the working directory is a fresh
  size-capped tmpfs (the only writable place, gone when the worker dies); a private directory
  on the way to the interpreter (such as ``/root``) is covered by an empty tmpfs with only the
  interpreter's directories bound back. Then the worker drops to a uid of its own, so ordinary
  permissions apply too. An audit hook refuses writes, renames, removals and permission
  changes outside the working directory in any case, and reads of other processes'
  ``/proc/<pid>`` files. Reading world-readable files is not otherwise restricted.
* processes: an audit hook refuses ``os.fork``/``forkpty``/``exec*``/``posix_spawn``/
  ``system``/``kill`` and ``subprocess.Popen``. The worker is a child subreaper with
  ``PR_SET_NO_NEW_PRIVS``, and kills every descendant after each call; as root its own uid
  also gets ``RLIMIT_NPROC`` (a fork bomb that slips past the hook stops there). The parent
  starts each worker in its own session, and on a timeout kills the whole process group and
  then every process left with the worker's uid.
* memory: ``RLIMIT_AS`` at the grader's ``memory_mb`` (per call; hard cap 2048 MB).
* CPU: affinity to at most two cores, ``RLIMIT_CPU`` per call (time limit × cores), an
  in-process wall-clock alarm at the time limit, and the parent's kill shortly after it.
* environment: the worker starts with a minimal environment (PATH, locale, HOME and TMPDIR
  pointing to its working directory): none of the parent's secrets.

Everything Python-level (the audit hook) is defence in depth, not a boundary: native code can
get around it. The kernel-level layers need root (or user namespaces); the handshake says
which ones are active.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

MB = 1024 * 1024
MAX_MEMORY_MB = 2048
DISK_MB = 1024
NPROC_LIMIT = 32
UID_BASE = 1_000_000_000
_HEADER = struct.Struct(">I")

# --- framing (both sides) ---


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def send_message(fd: int, obj: Any) -> None:
    """Write one length-prefixed JSON message to ``fd``."""
    data = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    _write_all(fd, _HEADER.pack(len(data)) + data)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    chunks, left = [], n
    while left:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_message(fd: int, deadline: float | None = None) -> Any:
    """Read one message from ``fd``; None at end of file. Raises TimeoutError past ``deadline``."""
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(header)[0], deadline)
    if body is None:
        return None
    return json.loads(body)


# --- parent side ---


class WorkerDied(Exception):
    """The worker process ended or broke the protocol. ``during_call``: it had the request."""

    def __init__(self, message: str, *, during_call: bool, returncode: int | None = None,
                 kind: str = "worker_died"):
        super().__init__(message)
        self.during_call = during_call
        self.returncode = returncode
        self.kind = kind


class WorkerTimeout(Exception):
    """The worker did not answer before the deadline (it has been killed)."""


_UIDS_LOCK = threading.Lock()
_UIDS_IN_USE: set[int] = set()
_UID_NEXT = [0]


def claim_uid() -> int | None:
    """A uid for a new worker when the parent is root, else None.

    Each worker gets a fresh one (256 per parent process, cycled) so that processes of a
    killed worker, even ones not reaped yet, never share a uid or an RLIMIT_NPROC count with
    a live worker.
    """
    if os.geteuid() != 0:
        return None
    base = UID_BASE + (os.getpid() % (1 << 20)) * 256
    with _UIDS_LOCK:
        for _ in range(256):
            uid = base + _UID_NEXT[0]
            _UID_NEXT[0] = (_UID_NEXT[0] + 1) % 256
            if uid not in _UIDS_IN_USE:
                _UIDS_IN_USE.add(uid)
                return uid
    raise RuntimeError("more than 256 sandboxed python grader workers at once")


def _release_uid(uid: int) -> None:
    with _UIDS_LOCK:
        _UIDS_IN_USE.discard(uid)


def _cores_for(slot: int) -> list[int]:
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(os.cpu_count() or 1))
    width = min(2, len(allowed))
    return sorted({allowed[(slot * width + k) % len(allowed)] for k in range(width)})


def _minimal_env(workdir: str, cores: int) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": workdir, "TMPDIR": workdir,
           "LANG": os.environ.get("LANG", "C.UTF-8"), "MALLOC_ARENA_MAX": "2"}
    for name in ("LC_ALL", "LC_CTYPE", "TZ", "NLTK_DATA", "LD_LIBRARY_PATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = str(cores)
    return env


class WorkerProcess:
    """One sandboxed worker: started at once, handshake read on first use.

    ``call`` sends a request and waits for the answer; ``close`` ends the worker and every
    process it left behind. Not thread-safe: one caller at a time.
    """

    def __init__(self, slot: int = 0, *, disk_mb: int = DISK_MB):
        self.slot = slot
        self.uid = claim_uid()
        self.workdir = tempfile.mkdtemp(prefix="gradeloop-python-")
        self.known_sources: set[str] = set()
        self.info: dict[str, Any] | None = None
        self._closed = False
        cores = _cores_for(slot)
        config = {"workdir": self.workdir, "uid": self.uid, "cores": cores, "disk_mb": disk_mb,
                  "max_memory_mb": MAX_MEMORY_MB, "nproc": NPROC_LIMIT}
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", os.path.abspath(__file__), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=self.workdir,
                env=_minimal_env(self.workdir, len(cores)), start_new_session=True, close_fds=True, bufsize=0,
            )
        except BaseException:
            self._stderr.close()
            os.rmdir(self.workdir)
            if self.uid is not None:
                _release_uid(self.uid)
            raise

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for the handshake; returns it (pid, uid, active sandbox mechanisms)."""
        if self.info is None:
            try:
                message = recv_message(self.proc.stdout.fileno(), time.monotonic() + timeout)
            except TimeoutError:
                self.close()
                raise WorkerDied("the worker did not start in time", during_call=False,
                                 kind="worker_start_failed") from None
            if not isinstance(message, dict) or not message.get("ready"):
                reason = self._stderr_tail() or message
                self.close()
                raise WorkerDied(f"the worker failed to start: {reason}", during_call=False,
                                 returncode=self.proc.returncode, kind="worker_start_failed")
            self.info = message
        return self.info

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``request`` and return the worker's answer.

        Raises WorkerDied (the worker ended; ``during_call`` says whether it had the request)
        or WorkerTimeout (no answer within ``timeout`` s; the worker has been killed).
        """
        self.ready()
        try:
            send_message(self.proc.stdin.fileno(), request)
        except OSError as exc:
            self.close()
            raise WorkerDied(f"could not send the request: {exc}", during_call=False,
                             returncode=self.proc.returncode) from None
        try:
            answer = recv_message(self.proc.stdout.fileno(), time.monotonic() + timeout)
        except TimeoutError:
            self.close()
            raise WorkerTimeout from None
        except (OSError, ValueError) as exc:
            self.close()
            raise WorkerDied(f"unreadable answer: {exc}", during_call=True, returncode=self.proc.returncode) from None
        if not isinstance(answer, dict):
            self.close()
            raise WorkerDied("the worker ended while running the grader", during_call=True,
                             returncode=self.proc.returncode)
        return answer

    def close(self, grace: float = 0.0) -> None:
        """End the worker (after ``grace`` s for a clean exit), its process group and its uid's processes."""
        if self._closed:
            return
        self._closed = True
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if grace and self.alive():
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        if self.uid is not None:
            kill_uid(self.uid)
            _release_uid(self.uid)
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        self._stderr.close()
        try:
            os.rmdir(self.workdir)  # with a mount namespace the host side stays empty
        except OSError:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stderr_tail(self) -> str:
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - 4000))
        return self._stderr.read().decode("utf-8", "replace").strip()


def kill_uid(uid: int, rounds: int = 50) -> None:
    """SIGKILL every live process whose real uid is ``uid`` (repeat until none is left)."""
    for _ in range(rounds):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/status", "rb") as handle:
                    fields = dict(line.split(b":", 1) for line in handle if line[:4] in (b"Stat", b"Uid:"))
                if int(fields[b"Uid"].split()[0]) != uid or fields[b"State"].strip().startswith(b"Z"):
                    continue
            except (OSError, KeyError, ValueError):
                continue
            found = True
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass
        if not found:
            return
        time.sleep(0.01)


# --- worker side: setting up the sandbox ---

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x2000, 0x4000, 1 << 18
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 36, 38
SYS_MOUNT_SETATTR = 442  # the same number on every architecture
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1


class _Libc:
    """The few libc calls Python's os module lacks (3.11), raising OSError on failure."""

    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.lib = ctypes.CDLL(None, use_errno=True)

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = self.ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def unshare(self, flags: int) -> None:
        self._check(self.lib.unshare(self.ctypes.c_int(flags)), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
        enc = (lambda s: None if s is None else s.encode())  # noqa: E731
        rc = self.lib.mount(enc(source), enc(target), enc(fstype), self.ctypes.c_ulong(flags), enc(data))
        self._check(rc, f"mount {target}")

    def mount_setattr(self, path: str, recursive: bool, set_: int, clear: int) -> None:
        ct = self.ctypes
        attr = (ct.c_uint64 * 4)(set_, clear, 0, 0)
        rc = self.lib.syscall(ct.c_long(SYS_MOUNT_SETATTR), ct.c_int(AT_FDCWD), path.encode(),
                              ct.c_uint(AT_RECURSIVE if recursive else 0), ct.byref(attr), ct.c_size_t(32))
        self._check(rc, f"mount_setattr {path}")

    def prctl_set(self, option: int) -> None:
        ct = self.ctypes
        self._check(self.lib.prctl(ct.c_int(option), ct.c_ulong(1), ct.c_ulong(0), ct.c_ulong(0), ct.c_ulong(0)),
                    "prctl")


def _needed_paths() -> list[str]:
    """Directories the interpreter reads from: they must stay visible to the sandbox uid."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.__file__), *filter(None, sys.path)}
    if os.environ.get("NLTK_DATA"):
        paths.update(os.environ["NLTK_DATA"].split(os.pathsep))
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})


def _hidden_parent(path: str) -> tuple[str, str] | None:
    """The outermost ancestor of ``path`` that others cannot enter, and its child on the way."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        if not os.stat(current).st_mode & 0o001:
            return current, part
        current = os.path.join(current, part)
    return None


def _others_can_read(path: str) -> bool:
    current = "/"
    for part in [p for p in path.split("/") if p]:
        if not os.stat(current).st_mode & 0o001:
            return False
        current = os.path.join(current, part)
    mode = os.stat(path).st_mode
    return bool(mode & 0o004) and (not os.path.isdir(path) or bool(mode & 0o001))


def _expose_hidden(libc: _Libc, stage: str) -> None:
    """Overmount private ancestors of needed paths (e.g. /root) with an empty tmpfs and bind back
    only the needed children: the sandbox uid can then read the interpreter and nothing else there."""
    for _ in range(4):
        wanted: dict[str, set[str]] = {}
        for path in _needed_paths():
            hidden = _hidden_parent(path)
            if hidden is not None:
                wanted.setdefault(hidden[0], set()).add(hidden[1])
        if not wanted:
            return
        for parent, children in wanted.items():
            staged = []
            for i, child in enumerate(sorted(children)):
                source = os.path.join(parent, child)
                point = os.path.join(stage, f"{len(os.listdir(stage))}-{i}")
                os.mkdir(point) if os.path.isdir(source) else open(point, "w").close()
                libc.mount(source, point, None, MS_BIND | MS_REC)
                staged.append((child, point, os.path.isdir(source)))
            libc.mount("tmpfs", parent, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
            for child, point, is_dir in staged:
                target = os.path.join(parent, child)
                os.mkdir(target) if is_dir else open(target, "w").close()
                libc.mount(point, target, None, MS_MOVE)
                os.rmdir(point) if is_dir else os.remove(point)


def _isolate(config: dict[str, Any], mechanisms: dict[str, str]) -> bool:
    """Namespaces and mounts. Returns whether the sandbox uid can read the interpreter."""
    workdir, uid = config["workdir"], config["uid"]
    root = os.geteuid() == 0
    attempts = [(CLONE_NEWNET | CLONE_NEWNS, ""), (CLONE_NEWNET, "")] if root else \
        [(CLONE_NEWUSER | CLONE_NEWNET, " in a user namespace")]
    mechanisms["network"] = "python (audit hook)"
    try:
        libc = _Libc()
        for flags, where in attempts:
            try:
                libc.unshare(flags)
            except OSError as exc:
                mechanisms["network"] = f"python (audit hook); unshare failed: {exc}"
                continue
            mechanisms["network"] = f"kernel (empty network namespace{where}) + audit hook"
            if flags & CLONE_NEWNS:
                return _private_mounts(libc, workdir, uid, config["disk_mb"], mechanisms)
            break
    except OSError as exc:
        mechanisms["network"] = f"python (audit hook); no libc: {exc}"
    if uid is not None:
        os.chown(workdir, uid, uid)
    return root and all(_others_can_read(p) for p in _needed_paths())


def _private_mounts(libc: _Libc, workdir: str, uid: int | None, disk_mb: int, mechanisms: dict[str, str]) -> bool:
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    try:
        libc.mount(None, "/", None, MS_REC | MS_PRIVATE)
        libc.mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,size={disk_mb}m{owner}")
        stage = os.path.join(workdir, ".stage")
        os.mkdir(stage)
        _expose_hidden(libc, stage)
        os.rmdir(stage)
        libc.mount_setattr("/", True, MOUNT_ATTR_RDONLY, 0)
        libc.mount_setattr(workdir, False, 0, MOUNT_ATTR_RDONLY)
        mechanisms["filesystem"] = (f"kernel (read-only mount namespace; workdir is a private {disk_mb} MB tmpfs) "
                                    "+ audit hook")
    except OSError as exc:
        mechanisms["filesystem"] = f"audit hook; private mounts failed: {exc}"
        if uid is not None:
            os.chown(workdir, uid, uid)
    return all(_others_can_read(p) for p in _needed_paths())


def _drop_privileges(config: dict[str, Any], readable: bool, mechanisms: dict[str, str]) -> bool:
    """Switch to the sandbox uid when possible; returns whether the worker now runs as it."""
    import resource

    uid = config["uid"]
    processes = "audit hook"
    if uid is not None and os.geteuid() == 0:
        if readable:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if (os.getuid(), os.geteuid()) != (uid, uid):  # kill(-1) below must never run as root
                raise OSError("setuid did not take effect")
            try:
                os.kill(-1, signal.SIGKILL)  # leftovers of an earlier worker with this uid
            except ProcessLookupError:
                pass
            resource.setrlimit(resource.RLIMIT_NPROC, (config["nproc"], config["nproc"]))
            processes = f"audit hook + kernel (own uid {uid}, RLIMIT_NPROC={config['nproc']})"
            mechanisms["filesystem"] = mechanisms.get("filesystem", "audit hook") + f" + unprivileged uid {uid}"
        else:
            processes += " (stays root: the interpreter is not readable by other users)"
    try:
        libc = _Libc()
        libc.prctl_set(PR_SET_NO_NEW_PRIVS)
        processes += " + no_new_privs"
        libc.prctl_set(PR_SET_CHILD_SUBREAPER)
        processes += " + child subreaper (descendants killed after each call)"
    except OSError:
        pass
    mechanisms["processes"] = processes + "; the parent kills the process group (and uid) on timeout"
    return os.getuid() == uid


def _set_fixed_limits(config: dict[str, Any], mechanisms: dict[str, str]) -> None:
    import resource

    hard_as = config["max_memory_mb"] * MB
    resource.setrlimit(resource.RLIMIT_AS, (hard_as, hard_as))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (config["disk_mb"] * MB, config["disk_mb"] * MB))
    mechanisms["memory"] = "kernel (RLIMIT_AS per call, hard cap %d MB)" % config["max_memory_mb"]
    try:
        os.sched_setaffinity(0, config["cores"])
        cores = f"affinity to cores {config['cores']}"
    except (AttributeError, OSError):
        cores = "no affinity"
    mechanisms["cpu"] = f"kernel ({cores}, RLIMIT_CPU per call) + wall-clock alarm + parent kill"
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")  # the OOM killer takes a worker before the host process
    except OSError:
        pass


# --- worker side: the audit hook ---

_THIS_FILE = os.path.abspath(__file__)
_DENIED = frozenset({
    "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile", "os.kill",
    "os.killpg", "subprocess.Popen", "pty.spawn", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
})
_PATH_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
                "os.truncate": (0,), "os.utime": (0,), "os.chflags": (0,), "os.lchflags": (0,),
                "os.setxattr": (0,), "os.removexattr": (0,), "os.rename": (0, 1), "os.link": (1,),
                "os.symlink": (1,), "os.mkfifo": (0,), "os.mknod": (0,)}
_DENIED_SYMBOLS = frozenset({
    "fork", "_Fork", "__fork", "__libc_fork", "vfork", "__vfork", "clone", "__clone", "clone3", "execve",
    "execveat", "execv", "execvp", "execvpe", "execl", "execlp",
    "system", "popen", "posix_spawn", "posix_spawnp", "socket", "connect", "syscall", "ptrace", "kill", "unshare",
    "setns", "mount", "umount", "umount2", "chroot", "setuid", "setreuid", "setresuid",
})


def _install_audit_hook(workdir: str, in_user_code: list[bool]) -> None:
    """Refuse network, process creation, signals and writes outside ``workdir``.

    Audit hooks cannot be removed once added; the hook keeps its own references so that
    grader code rebinding module attributes does not change it.
    """
    realpath, join, fsdecode, fspath = os.path.realpath, os.path.join, os.fsdecode, os.fspath
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    root = realpath(workdir)
    own_proc = f"/proc/{os.getpid()}"
    allowed_outside = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})

    def resolve(path: Any) -> str | None:
        if isinstance(path, int):
            return None  # an already open descriptor
        return realpath(join(root, fsdecode(fspath(path))))

    def inside(resolved: str | None) -> bool:
        return resolved is None or resolved == root or resolved.startswith(root + "/") or resolved in allowed_outside

    def deny(what: str) -> None:
        raise PermissionError(f"sandbox: {what} is not allowed in a python grader")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, flags = args[0], args[2]
            resolved = resolve(path) if path is not None else None
            if resolved is None:
                return
            if isinstance(flags, int) and flags & write_flags and not inside(resolved):
                deny(f"writing {path!r}")
            if resolved.startswith("/proc/") and resolved.split("/")[2].isdigit() \
                    and not (resolved + "/").startswith(own_proc + "/"):
                deny(f"reading {path!r}")
        elif event in _DENIED or event.startswith("socket."):
            if in_user_code[0] or event not in ("os.kill", "os.killpg"):  # the worker kills strays itself
                deny(event)
        elif event in _PATH_EVENTS:
            for index in _PATH_EVENTS[event]:
                if not inside(resolve(args[index])):
                    deny(f"{event} {args[index]!r}")
        elif event == "sqlite3.connect":
            database = fsdecode(fspath(args[0]))
            if database.startswith("file:") or (database not in ("", ":memory:") and not inside(resolve(database))):
                deny(f"{event} {database!r}")
        elif event in ("resource.setrlimit", "resource.prlimit") and in_user_code[0]:
            deny(event)
        elif event == "ctypes.dlsym" and isinstance(args[1], str) and args[1] in _DENIED_SYMBOLS:
            deny(f"ctypes access to {args[1]!r}")

    sys.addaudithook(hook)


# --- worker side: grading ---


class _TimeLimit(BaseException):
    """Raised in grader code by the wall-clock alarm."""


class _CpuLimit(_TimeLimit):
    """Raised in grader code when RLIMIT_CPU's soft limit is reached."""


def _binds(signature: Any, count: int) -> bool:
    """Whether a call with ``count`` positional arguments fits ``signature``."""
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _raise_time_limit(signum: int, frame: Any) -> None:
    raise _CpuLimit() if signum == signal.SIGXCPU else _TimeLimit()


class _Worker:
    def __init__(self, config: dict[str, Any], cores: int):
        import inspect
        import linecache
        import math
        import numbers
        import resource
        import traceback

        self.inspect, self.linecache, self.math, self.numbers = inspect, linecache, math, numbers
        self.resource, self.traceback = resource, traceback
        self.cores = cores
        self.own_uid = False  # True once the worker runs as a uid of its own: kill(-1) then reaches only strays
        self.cache: dict[str, Any] = {}  # source sha256 -> grade function, or an error text
        self.in_user_code = [False]
        signal.signal(signal.SIGALRM, _raise_time_limit)
        signal.signal(signal.SIGXCPU, _raise_time_limit)

    def serve(self, fd_in: int, fd_out: int) -> None:
        while True:
            request = recv_message(fd_in)
            if request is None:
                return
            try:
                answer = self.handle(request)
            except BaseException as exc:  # a late alarm or signal outside grader code
                answer = {"status": "error", "details": self.format(exc), "recycle": True}
            if self.kill_strays():
                answer["recycle"] = True
            send_message(fd_out, answer)
            if answer.get("recycle"):
                return

    def kill_strays(self) -> bool:
        """Kill processes the grader started around the audit hook; True if there were any.

        The worker is a child subreaper, so while any descendant lives the worker has a child.
        """
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        for _ in range(1000):
            if self.own_uid:
                try:
                    os.kill(-1, signal.SIGKILL)  # every other process of this uid
                except OSError:
                    pass
            for pid in self.children():
                try:
                    os.kill(pid, signal.SIGKILL)  # unreaped children keep their pid: no reuse race
                except OSError:
                    pass
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                return True
            time.sleep(0.001)
        return True

    @staticmethod
    def children() -> list[int]:
        pids: list[int] = []
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children") as handle:
                    pids += [int(pid) for pid in handle.read().split()]
            except OSError:
                pass
        return pids

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        sha = request["sha"]
        if sha not in self.cache and "source" not in request:
            return {"status": "need_source"}
        timeout, memory_mb = float(request["timeout"]), int(request["memory_mb"])
        self.set_limits(memory_mb, timeout)
        self.in_user_code[0] = True
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            grade = self.cache.get(sha)
            if grade is None:
                grade = self.cache[sha] = self.load(sha, request["source"])
            if isinstance(grade, str):
                return {"status": "error", "details": grade}
            return self.check(grade(request["sample"], request["item"]))  # check may run the value's __float__
        except _CpuLimit as exc:
            return {"status": "error", "recycle": True,
                    "details": f"time limit of {timeout:g} s exceeded (CPU time)\n{self.format(exc)}"}
        except _TimeLimit as exc:
            return {"status": "error", "recycle": True,
                    "details": f"time limit of {timeout:g} s exceeded\n{self.format(exc)}"}
        except MemoryError as exc:
            return {"status": "error", "recycle": True,
                    "details": f"memory limit of {memory_mb} MB exceeded\n{self.format(exc)}"}
        except BaseException as exc:
            return {"status": "error", "details": self.format(exc)}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.in_user_code[0] = False
            self.set_limits(None, None)

    def set_limits(self, memory_mb: int | None, timeout: float | None) -> None:
        """Limits for one call (``None``: between calls, the hard caps, so that reading a large
        request cannot fail on the previous grader's memory limit)."""
        res = self.resource
        hard_as = res.getrlimit(res.RLIMIT_AS)[1]
        res.setrlimit(res.RLIMIT_AS, (hard_as if memory_mb is None else min(memory_mb * MB, hard_as), hard_as))
        if timeout is not None:
            used = sum(res.getrusage(res.RUSAGE_SELF)[:2])
            res.setrlimit(res.RLIMIT_CPU, (int(used + timeout * self.cores) + 1, res.RLIM_INFINITY))

    def load(self, sha: str, source: str) -> Any:
        """The ``grade`` function defined by ``source``, or a text saying why there is none."""
        filename = f"<grader {sha[:12]}>"
        self.linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            code = compile(source, filename, "exec")
        except (SyntaxError, ValueError) as exc:
            return "the grader source does not compile\n" + "".join(self.traceback.format_exception_only(exc))
        namespace: dict[str, Any] = {"__name__": "__grader__", "__file__": filename}
        try:
            exec(code, namespace)
        except (_TimeLimit, MemoryError):
            raise
        except BaseException as exc:
            return "the grader source raised an exception while loading\n" + self.format(exc)
        return self.check_grade(namespace.get("grade"))

    def check_grade(self, grade: Any) -> Any:
        if not callable(grade):
            return "the grader source must define a function grade(sample, item)"
        try:
            signature = self.inspect.signature(grade)
        except (TypeError, ValueError):
            return grade
        if not _binds(signature, 2) or _binds(signature, 1) or _binds(signature, 3):
            return f"grade must take exactly two arguments (sample, item); it is grade{signature}"
        return grade

    def check(self, value: Any) -> dict[str, Any]:
        """Scores are real numbers (int, float, bool, numpy scalars) that are finite."""
        if not isinstance(value, self.numbers.Real):
            return {"status": "error",
                    "details": f"grade returned {value!r:.200} ({type(value).__name__}); it must return a float"}
        score = float(value)
        if not self.math.isfinite(score):
            return {"status": "error", "details": f"grade returned {score}; it must return a finite float"}
        return {"status": "ok", "score": score}

    def format(self, exc: BaseException) -> str:
        """The traceback of ``exc`` without the sandbox's own frames."""
        report = self.traceback.TracebackException(type(exc), exc, exc.__traceback__)
        pending, seen = [report], set()
        while pending:
            current = pending.pop()
            if current is None or id(current) in seen:
                continue
            seen.add(id(current))
            frames = [frame for frame in current.stack if frame.filename != _THIS_FILE]
            current.stack = self.traceback.StackSummary.from_list(frames)
            pending += [current.__cause__, current.__context__]
        return "".join(report.format())


def _main() -> None:
    config = json.loads(sys.argv[1])
    fd_in, fd_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # print() in a grader must not corrupt the protocol
    mechanisms: dict[str, str] = {"environment": "minimal (PATH, locale, HOME/TMPDIR = workdir)"}
    readable = _isolate(config, mechanisms)
    os.chdir(config["workdir"])
    _set_fixed_limits(config, mechanisms)
    worker = _Worker(config, len(config["cores"]))  # imports what it needs while it may still read everything
    worker.own_uid = _drop_privileges(config, readable, mechanisms)
    mechanisms.setdefault("filesystem", "audit hook")
    _install_audit_hook(config["workdir"], worker.in_user_code)
    os.dup2(null, 2)
    send_message(fd_out, {"ready": True, "pid": os.getpid(), "uid": os.getuid(), "mechanisms": mechanisms})
    worker.serve(fd_in, fd_out)


if __name__ == "__main__":
    _main()
