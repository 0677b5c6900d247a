"""A sandboxed Python worker process for ``python`` graders, and the parent's handle on it.

This file is both a module (the parent side: :class:`WorkerProcess`) and the worker program
itself, started as ``python -I -B -c "import _sandbox; ..." DIR CONFIG`` (from its cached
bytecode). The worker side uses the standard library only and never imports gradeloop.

Processes. The worker (started by gradeloop, in its own session) enters new namespaces and
forks the *zygote*, which serves one grader source for its whole life: it loads the source
once (module-level code runs there), then forks a fresh process for every grade, relays that
process's raw answer and reaps it. Nothing a grade does reaches the next grade (a file it
leaves in the working directory is removed; a changed file from the load, or a process that
outlived it, retires the zygote), and nothing one grader does reaches another grader's
zygote. The value ``grade`` returned is checked (a finite real number) in gradeloop's own
process, never in a process grader code has run in. The protocol, length-prefixed frames:
``{"op": "load", "source", "timeout", "memory_mb"}`` -> ``{"status": "loaded"}`` or an error
(JSON); then per grade ``b"g"`` + time and memory limits + the JSON of ``[sample, item]``
(:func:`grade_request`) -> ``b"a"`` + the grade's own message, relayed unchecked and unparsed
(``b"n"`` + a float64 when ``grade`` returned a number, else JSON), or a JSON object saying
why there is none. The zygote never parses a grade's JSON: the grade's process does.

The sandbox, in layers; each is tried in order and the ones that took effect are reported in
the handshake (``WorkerProcess.info["mechanisms"]``):

* pids: a new PID namespace (as root; otherwise inside a new user namespace when the kernel
  allows it) whose PID 1 is the zygote, with a fresh ``/proc`` mounted in its own mount
  namespace: no process of the host is visible, so neither are their command lines or
  environments.
* syscalls: seccomp-BPF filters (our own programs, with an architecture check; x86_64 and
  aarch64), installed in the zygote before any grader code runs. The zygote's filter refuses
  sockets of every family (``AF_UNIX`` too), ``execve``/``execveat``, ``ptrace``,
  ``process_vm_*``, mounts, ``chroot``/``pivot_root``, ``unshare``/``setns`` and clone with
  namespace flags, ``bpf``, ``perf_event_open``, keyrings, ``userfaultfd``, ``io_uring`` and
  module/kexec calls; ``clone3`` gets ENOSYS so that the C library falls back to ``clone``, whose
  flags a filter can read. Each grade's process stacks a stricter filter that also refuses
  ``fork``, ``vfork`` and ``clone`` without ``CLONE_THREAD``: threads only.
* network: a new network namespace, which has no interfaces up, not even loopback. An audit
  hook refuses every ``socket.*`` event in any case.
* filesystem: as root, a private mount namespace in which every mount is read-only
  (``mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)``) and the working directory is a fresh
  size-capped tmpfs (the only writable place, gone when the worker dies); a private directory
  on the way to the interpreter (such as ``/root``) is covered by an empty tmpfs with only the
  interpreter's directories bound back. Then the zygote drops to a uid of its own, so ordinary
  permissions apply too. An audit hook refuses writes, renames, removals and permission
  changes outside the working directory in any case, and reads of other processes'
  ``/proc/<pid>`` files. Reading world-readable files is not otherwise restricted.
* processes: an audit hook refuses ``os.fork``/``forkpty``/``exec*``/``posix_spawn``/
  ``system``/``kill`` and ``subprocess.Popen`` in grader code. The zygote has
  ``PR_SET_NO_NEW_PRIVS``, is PID 1 of its namespace or a child subreaper, and kills every
  descendant after each call; as root its own uid also gets ``RLIMIT_NPROC``. The parent kills
  the whole process group and then every process left with the worker's uid when it ends a
  worker.
* memory: ``RLIMIT_AS`` at the grader's ``memory_mb`` (for the load, and in each grade's
  process; hard cap 2048 MB).
* CPU: affinity to at most two cores, ``RLIMIT_CPU`` (time limit x cores) and a wall-clock
  alarm at the time limit in each grade's process; the zygote kills a grade half a second past
  it, and the parent kills the whole worker two seconds past it.
* environment: the worker starts with a minimal environment (PATH, locale, HOME and TMPDIR
  pointing to its working directory): none of the parent's secrets.

Everything Python-level (the audit hook) is defence in depth, not a boundary: native code can
get around it; the kernel layers are the boundary. As root (and in CI) all of them are active.
Without root they need unprivileged user namespaces (PID and network namespaces, the fresh
``/proc``); seccomp needs neither; the read-only mounts and the own uid need root. Grader code
can always change its own zygote and so its own scores (it is its own code), never another
grader's score or the parent's checks.
"""

from __future__ import annotations

import _signal as _signal_module
import _thread
import gc
import json
import json.scanner
import os
import select
import signal
import struct
import sys
import time
from typing import Any

# The worker program must not import threading or random (subprocess and tempfile import them):
# their at-fork hooks run Python code in every grade's process, which tripled the cost of a fork.
# The parent side imports subprocess and tempfile where it uses them.

MB = 1024 * 1024
MAX_MEMORY_MB = 2048
DISK_MB = 1024
NPROC_LIMIT = 32
UID_BASE = 1_000_000_000
_HEADER = struct.Struct(">I")
_LIMITS = struct.Struct("<dI")  # a grade request's time limit (s) and memory limit (MB)
_NUMBER = struct.Struct("<d")
GRADE, ANSWER, NUMBER = b"g", b"a", b"n"  # the first byte of a grade request, a relayed answer, a number
# bound once: grader code rebinding json.dumps or os.write in its zygote does not change the protocol
_dumps, _loads, _write, _read = json.dumps, json.loads, os.write, os.read
_select, _monotonic = select.select, time.monotonic

# --- framing (both sides) ---


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view):]


def send_frame(fd: int, data: bytes) -> None:
    """Write one length-prefixed frame to ``fd``."""
    _write_all(fd, _HEADER.pack(len(data)) + data)


def send_message(fd: int, obj: Any) -> None:
    """Write one length-prefixed JSON message to ``fd``."""
    send_frame(fd, _dumps(obj, separators=(",", ":")).encode("utf-8"))


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    chunks, left = [], n
    while left:
        if deadline is not None:
            remaining = deadline - _monotonic()
            if remaining <= 0 or not _select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = _read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(fd: int, deadline: float | None = None) -> bytes | None:
    """Read one frame from ``fd``; None at end of file. Raises TimeoutError past ``deadline``."""
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    return _read_exact(fd, _HEADER.unpack(header)[0], deadline)


def recv_message(fd: int, deadline: float | None = None) -> Any:
    """Read one JSON message from ``fd``; None at end of file. Raises TimeoutError past ``deadline``."""
    body = recv_frame(fd, deadline)
    return None if body is None else _loads(body)


def grade_request(timeout: float, memory_mb: int, sample: Any, item: Any) -> bytes:
    """The frame that asks a worker for one grade. Raises TypeError or ValueError when
    ``sample`` or ``item`` is not JSON-serializable."""
    return GRADE + _LIMITS.pack(timeout, memory_mb) + _dumps([sample, item], separators=(",", ":")).encode("utf-8")


def read_answer(data: bytes) -> Any:
    """A grade's own message (``b"n"`` + float64, or JSON) as a dict; ``data`` itself when unreadable."""
    if data[:1] == NUMBER and len(data) == 1 + _NUMBER.size:
        return {"status": "returned", "number": _NUMBER.unpack_from(data, 1)[0]}
    try:
        return _loads(data)
    except ValueError:  # UnicodeDecodeError too
        return data


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


_UIDS_LOCK = _thread.allocate_lock()
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


# The worker runs this file from its cached bytecode (imported, not run as a script): compiling
# it left ~2 MB of parser memory in every zygote, which each fork copies the page tables of.
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); import _sandbox; del sys.path[0]; _sandbox._main()"


class WorkerProcess:
    """One sandboxed worker for one grader source: started at once, handshake read on first use.

    ``call`` sends a request (``{"op": "load", "source", ...}`` once, then grades) and waits for
    the answer; ``close`` ends the worker and every process it left behind. Not thread-safe:
    one caller at a time.
    """

    def __init__(self, slot: int = 0, *, disk_mb: int = DISK_MB, sha: str | None = None):
        import subprocess
        import tempfile

        self.slot = slot
        self.sha = sha  # the one grader source this worker serves
        self.loaded: dict[str, Any] | None = None  # the zygote's answer to loading it
        self.uid = claim_uid()
        self.workdir = tempfile.mkdtemp(prefix="gradeloop-python-")
        self.info: dict[str, Any] | None = None
        self._closed = False
        cores = _cores_for(slot)
        config = {"workdir": self.workdir, "uid": self.uid, "cores": cores, "disk_mb": disk_mb,
                  "max_memory_mb": MAX_MEMORY_MB, "nproc": NPROC_LIMIT}
        self._stderr = tempfile.TemporaryFile()
        here = os.path.dirname(os.path.abspath(__file__))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", _BOOT, here, json.dumps(config)],
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

    def call(self, request: dict[str, Any] | bytes, timeout: float) -> dict[str, Any]:
        """Send ``request`` (a JSON message, or a frame from :func:`grade_request`) and return the
        worker's answer; a relayed grade's answer is ``{"status": "child", "answer": <bytes>}``.

        Raises WorkerDied (the worker ended; ``during_call`` says whether it had the request)
        or WorkerTimeout (no answer within ``timeout`` s; the worker has been killed).
        """
        self.ready()
        try:
            if isinstance(request, bytes):
                send_frame(self.proc.stdin.fileno(), request)
            else:
                send_message(self.proc.stdin.fileno(), request)
        except OSError as exc:
            self.close()
            raise WorkerDied(f"could not send the request: {exc}", during_call=False,
                             returncode=self.proc.returncode) from None
        try:
            frame = recv_frame(self.proc.stdout.fileno(), time.monotonic() + timeout)
            if frame is not None and frame[:1] == ANSWER:
                return {"status": "child", "answer": frame[1:]}
            answer = None if frame is None else _loads(frame)
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
        import subprocess

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
        import subprocess

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

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x1000, 0x2000, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
SYS_MOUNT_SETATTR = 442  # the same number on every architecture
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1


class _Libc:
    """The few libc calls Python's os module lacks (3.11), raising OSError on failure.

    Every symbol is resolved here, before the audit hook (which refuses ``ctypes`` access to
    ``syscall`` and friends) is installed.
    """

    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.lib = ctypes.CDLL(None, use_errno=True)
        self.syscall, self.prctl = self.lib.syscall, self.lib.prctl
        self.do_unshare, self.do_mount = self.lib.unshare, self.lib.mount

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = self.ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def unshare(self, flags: int) -> None:
        self._check(self.do_unshare(self.ctypes.c_int(flags)), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
        enc = (lambda s: None if s is None else s.encode())  # noqa: E731
        rc = self.do_mount(enc(source), enc(target), enc(fstype), self.ctypes.c_ulong(flags), enc(data))
        self._check(rc, f"mount {target}")

    def mount_setattr(self, path: str, recursive: bool, set_: int, clear: int) -> None:
        ct = self.ctypes
        attr = (ct.c_uint64 * 4)(set_, clear, 0, 0)
        rc = self.syscall(ct.c_long(SYS_MOUNT_SETATTR), ct.c_int(AT_FDCWD), path.encode(),
                          ct.c_uint(AT_RECURSIVE if recursive else 0), ct.byref(attr), ct.c_size_t(32))
        self._check(rc, f"mount_setattr {path}")

    def prctl_set(self, option: int, value: int = 1) -> None:
        ct = self.ctypes
        self._check(self.prctl(ct.c_int(option), ct.c_ulong(value), ct.c_ulong(0), ct.c_ulong(0), ct.c_ulong(0)),
                    "prctl")

    def seccomp_installer(self, program: bytes, sys_seccomp: int) -> Any:
        """A function that installs the seccomp-BPF ``program`` (packed ``struct sock_filter``s)
        on every thread of the calling process, raising OSError if the kernel refuses."""
        ct = self.ctypes

        class SockFprog(ct.Structure):
            _fields_ = [("len", ct.c_ushort), ("filter", ct.c_void_p)]

        buffer = ct.create_string_buffer(program, len(program))
        prog = SockFprog(len(program) // 8, ct.cast(buffer, ct.c_void_p))
        args = (ct.c_long(sys_seccomp), ct.c_uint(1), ct.c_uint(1), ct.byref(prog))  # SET_MODE_FILTER, TSYNC

        def install(_keep: Any = buffer) -> None:
            self._check(self.syscall(*args), "seccomp")

        return install


# --- worker side: the seccomp filters ---

# Syscall numbers per architecture (the kernel's unistd tables); fork and vfork exist on x86_64 only.
_SYSCALLS = {
    "x86_64": (0xC000003E, 317, {
        "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53, "accept4": 288,
        "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "clone3": 435, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166, "pivot_root": 155,
        "chroot": 161, "unshare": 272, "setns": 308, "bpf": 321, "perf_event_open": 298, "keyctl": 250,
        "add_key": 248, "request_key": 249, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "pidfd_getfd": 438,
        "process_madvise": 440, "kcmp": 312, "name_to_handle_at": 303, "open_by_handle_at": 304}),
    "aarch64": (0xC00000B7, 277, {
        "socket": 198, "socketpair": 199, "bind": 200, "listen": 201, "accept": 202, "connect": 203, "accept4": 242,
        "clone": 220, "execve": 221, "execveat": 281, "clone3": 435, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97,
        "setns": 268, "bpf": 280, "perf_event_open": 241, "keyctl": 219, "add_key": 217, "request_key": 218,
        "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "pidfd_getfd": 438, "process_madvise": 440, "kcmp": 272, "name_to_handle_at": 264,
        "open_by_handle_at": 265}),
}
# refused in the zygote and in every grade (errno EPERM); clone3 gets ENOSYS (its flags live in
# memory a filter cannot read), so that glibc falls back to clone, whose flags it can
SECCOMP_DENIED = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "execve", "execveat", "ptrace",
    "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "pidfd_getfd",
    "process_madvise", "kcmp", "name_to_handle_at", "open_by_handle_at",
)
SECCOMP_DENIED_IN_GRADE = ("fork", "vfork")  # and clone without CLONE_THREAD: threads only
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
_RET_KILL_PROCESS, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_EPERM, _ENOSYS = 1, 38
_LD_ABS_W, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06


def seccomp_program(machine: str, per_grade: bool, allow: tuple[str, ...] = ()) -> tuple[bytes, int] | None:
    """The BPF program (packed ``struct sock_filter``s) and the seccomp syscall number for
    ``machine``, or None where the syscall table is not known.

    ``per_grade=False``: the zygote's filter (fork allowed, clone with namespace flags refused);
    ``True``: the stricter filter of each grade's process (threads only). ``allow`` names
    syscalls of SECCOMP_DENIED to let through (the command sandbox allows ``execve``).
    """
    if machine not in _SYSCALLS or sys.byteorder != "little":
        return None
    arch, sys_seccomp, numbers = _SYSCALLS[machine]
    denied = [numbers[name] for name in SECCOMP_DENIED + (SECCOMP_DENIED_IN_GRADE if per_grade else ())
              if name in numbers and name not in allow]
    code: list[tuple[int, Any, Any, int]] = [(_LD_ABS_W, 0, 0, 4), (_JEQ, None, "kill", arch), (_LD_ABS_W, 0, 0, 0)]
    if machine == "x86_64":
        code.append((_JGE, "deny", None, 0x40000000))  # the x32 ABI's numbers
    code += [(_JEQ, "deny", None, nr) for nr in denied]
    code += [(_JEQ, "nosys", None, numbers["clone3"]), (_JEQ, "clone", "allow", numbers["clone"])]
    code.append(("clone", None, None, None))
    code.append((_LD_ABS_W, 0, 0, 16))  # the low 32 bits of args[0]: clone's flags
    code.append((_JSET, "allow", "deny", CLONE_THREAD) if per_grade else (_JSET, "deny", "allow", CLONE_NAMESPACES))
    for label, value in (("allow", _RET_ALLOW), ("deny", _RET_ERRNO | _EPERM), ("nosys", _RET_ERRNO | _ENOSYS),
                         ("kill", _RET_KILL_PROCESS)):
        code += [(label, None, None, None), (_RET, 0, 0, value)]
    return _assemble(code), sys_seccomp


def _assemble(code: list[tuple[Any, Any, Any, Any]]) -> bytes:
    """Resolve labels (a string first element marks a label; a jump target None is the next one)."""
    labels, program = {}, []
    for entry in code:
        if isinstance(entry[0], str):
            labels[entry[0]] = len(program)
        else:
            program.append(entry)
    out = bytearray()
    for pc, (op, jt, jf, k) in enumerate(program):
        offsets = [0 if target in (0, None) else labels[target] - pc - 1 for target in (jt, jf)]
        out += struct.pack("<HBBI", op, *offsets, k)
    return bytes(out)


# --- worker side: namespaces and mounts ---


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


def _unshare(libc: _Libc | None, root: bool, mechanisms: dict[str, str]) -> int:
    """New namespaces for the worker; returns the CLONE_NEW* flags that took effect (0: none).

    A new PID namespace applies to the worker's next child: the zygote, forked next, is its PID 1.
    """
    if libc is None:
        mechanisms["network"] = "python (audit hook); no libc"
        return 0
    mechanisms["network"] = "python (audit hook)"
    user = 0 if root else CLONE_NEWUSER
    where = "" if root else " in a user namespace"
    for flags in (CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID, CLONE_NEWNET | CLONE_NEWNS, CLONE_NEWNET):
        try:
            libc.unshare(flags | user)
        except OSError as exc:
            mechanisms["network"] = f"python (audit hook); unshare failed: {exc}"
            continue
        mechanisms["network"] = f"kernel (empty network namespace{where}) + audit hook"
        return flags | user
    return 0


def _zygote_mounts(libc: _Libc | None, config: dict[str, Any], flags: int, root: bool,
                   mechanisms: dict[str, str]) -> bool:
    """In the zygote: a fresh /proc for its PID namespace, and (as root) the read-only mounts.
    Returns whether the sandbox uid can read the interpreter."""
    workdir, uid = config["workdir"], config["uid"]
    mechanisms["pids"] = "none (no PID namespace here: /proc shows the host's processes; the audit hook refuses " \
                         "reading their files)"
    if libc is not None and flags & CLONE_NEWPID and flags & CLONE_NEWNS:
        try:
            libc.mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the host
            libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            mechanisms["pids"] = ("kernel (own PID namespace: the zygote is PID 1 and a fresh /proc shows only "
                                  "the sandbox's processes)")
        except OSError as exc:
            mechanisms["pids"] = f"kernel (own PID namespace) but /proc could not be remounted: {exc}"
    if libc is not None and root and flags & CLONE_NEWNS:
        return _private_mounts(libc, workdir, uid, config["disk_mb"], mechanisms)
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


def _fork_zygote(keep_out: tuple[int, ...]) -> None:
    """Fork the zygote (PID 1 of the new PID namespace) and return in it. The worker process
    itself stays outside, waits for the zygote and ends as it ended."""
    pid = os.fork()
    if pid == 0:
        return
    for fd in keep_out:
        os.close(fd)
    status = os.waitpid(pid, 0)[1]
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _drop_privileges(config: dict[str, Any], libc: _Libc | None, readable: bool, mechanisms: dict[str, str]) -> bool:
    """Switch to the sandbox uid when possible; returns whether the zygote now runs as it."""
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
        if libc is None:
            raise OSError("no libc")
        libc.prctl_set(PR_SET_NO_NEW_PRIVS)
        processes += " + no_new_privs"
        libc.prctl_set(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
        libc.prctl_set(PR_SET_DUMPABLE, 0)  # no process of the same uid may open its /proc/<pid>/mem
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


def _raise_oom_score() -> None:
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
_SANDBOX_EVENTS = frozenset({"os.kill", "os.killpg", "os.fork"})  # the zygote's own, outside grader code
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
    realpath, join, fsdecode, fspath, getpid = os.path.realpath, os.path.join, os.fsdecode, os.fspath, os.getpid
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    root = realpath(workdir)
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
                    and not (resolved + "/").startswith(f"/proc/{getpid()}/"):
                deny(f"reading {path!r}")
        elif event in _DENIED or event.startswith("socket."):
            if in_user_code[0] or event not in _SANDBOX_EVENTS:
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


# --- worker side: the zygote and its grades ---

# Bound at start-up: grader code that rebinds builtins or module attributes (float, json.dumps,
# os.fork, ...) in its own zygote does not change how the zygote forks or reports.
_float, _int, _min, _isinstance, _type, _repr, _str = float, int, min, isinstance, type, repr, str
_fork, _pipe, _close, _waitpid, _kill, _exit = os.fork, os.pipe, os.close, os.waitpid, os.kill, os._exit
# _signal.signal, not signal.signal: the latter converts the old handler to an enum member, a
# failed lookup whose exception alone touched ~85 pages (copied, in each grade's process)
_setitimer, _signal, _scandir = signal.setitimer, _signal_module.signal, os.scandir
_SIGALRM, _SIGXCPU = int(signal.SIGALRM), int(signal.SIGXCPU)
# the request's JSON is parsed by the C scanner directly: json.loads's Python wrappers and
# regular expression add pages a grade's process must copy
_scan_json = json.scanner.make_scanner(json.JSONDecoder())
MAX_ANSWER = 4 * MB  # what a grade may send back; more and it is killed
MAX_DETAILS = 100_000  # characters of a traceback kept (head and tail)
CHILD_GRACE_S = 0.5  # the zygote kills a grade this long after its time limit


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


def _shorten(text: str) -> str:
    if len(text) <= MAX_DETAILS:
        return text
    half = MAX_DETAILS // 2
    return f"{text[:half]}\n[... {len(text) - MAX_DETAILS} characters left out ...]\n{text[-half:]}"


def _number(value: Any, real: type) -> float | None:
    """What ``grade`` returned as a float (possibly NaN or inf, for the parent to refuse), or None
    for a value that is no real number. Runs in the grade's process: ``float()`` may run the
    value's own ``__float__``."""
    kind = _type(value)
    if kind is float:
        return value
    if kind is bool or kind is int or _isinstance(value, real):
        return _float(value)
    return None


class _Zygote:
    """Loads one grader's source once, then forks a fresh process for every grade."""

    def __init__(self, config: dict[str, Any], cores: int, libc: _Libc | None):
        import inspect
        import linecache
        import numbers
        import resource
        import traceback

        import builtins

        self.inspect, self.linecache, self.real = inspect, linecache, numbers.Real
        self.builtins, self.pristine_builtins = builtins.__dict__, dict(builtins.__dict__)
        self.resource, self.traceback = resource, traceback
        self.hard_as = resource.getrlimit(resource.RLIMIT_AS)[1]
        self.cores, self.libc = cores, libc
        self.own_uid = False  # True once the zygote runs as a uid of its own: kill(-1) then reaches only strays
        self.grade: Any = None
        self.stale = False
        self.workdir, self.baseline = config["workdir"], {}
        self.in_user_code = [False]
        self.grade_filter: Any = None  # installs the per-grade seccomp filter
        self.fds: tuple[int, ...] = ()
        signal.signal(signal.SIGALRM, _raise_time_limit)
        signal.signal(signal.SIGXCPU, _raise_time_limit)

    def serve(self, fd_in: int, fd_out: int) -> None:
        while True:
            request = recv_frame(fd_in)
            if request is None:
                return
            if self.stale:  # the last grade left something behind: a fresh zygote takes this one
                send_message(fd_out, {"status": "stale", "recycle": True})
                return
            try:
                answer = self.handle(request)
            except BaseException as exc:  # a late alarm or signal outside grader code
                answer = {"status": "error", "details": self.format(exc), "recycle": True}
            if _type(answer) is bytes:  # a grade's answer, relayed as it came; its process is gone
                send_frame(fd_out, answer)
                self.finish_grade()
                continue
            if self.kill_strays():
                answer["recycle"] = True
            send_message(fd_out, answer)
            if answer.get("recycle"):
                return

    def handle(self, request: bytes) -> dict[str, Any] | bytes:
        if request[:1] == GRADE and self.grade is not None:
            return self.run_grade(request)
        if request[:1] == GRADE:
            return {"status": "error", "details": "no grader is loaded in this worker", "recycle": True}
        load = _loads(request)
        return self.load(load["source"], _float(load["timeout"]), _int(load["memory_mb"]))

    # -- in the grade's own process --

    def after_fork_in_child(self) -> None:
        """The first at-fork hook (registered before any grader code): drop the protocol's
        descriptors and install the per-grade seccomp filter before anything else runs."""
        try:
            for fd in self.fds:
                _close(fd)
            if self.grade_filter is not None:
                self.grade_filter()
        except BaseException:
            _exit(71)

    def child(self, request: bytes, fd: int) -> None:
        """Run ``grade`` once and send what it returned (or why it did not) to ``fd``; never returns."""
        timeout, memory_mb = _LIMITS.unpack_from(request, 1)
        try:
            _signal(_SIGALRM, _raise_time_limit)
            _signal(_SIGXCPU, _raise_time_limit)
            self.set_limits(memory_mb, timeout, fresh=True)
            sample, item = _scan_json(request[1 + _LIMITS.size:].decode("utf-8"), 0)[0]
            self.in_user_code[0] = True
            _setitimer(signal.ITIMER_REAL, timeout)
            value = self.grade(sample, item)
            number = _number(value, self.real)
            if number is not None:  # 9 bytes; no json, whose encoder looks up builtins grader code may rebind
                _setitimer(signal.ITIMER_REAL, 0)
                send_frame(fd, NUMBER + _NUMBER.pack(number))
                _exit(0)
            self.builtins.update(self.pristine_builtins)  # json looks builtins up; grader code may have rebound them
            message = {"status": "returned", "number": None, "type": _str(_type(value).__name__)[:100],
                       "repr": _repr(value)[:200]}
        except BaseException as exc:
            message = self.failure(exc)
        try:
            _setitimer(signal.ITIMER_REAL, 0)
            send_message(fd, message)
        except BaseException as exc:
            send_message(fd, {"status": "error", "details": f"the result of grade() could not be sent: {exc!r:.200}"})
        finally:
            _exit(0)

    def failure(self, exc: BaseException) -> dict[str, Any]:
        limit = "cpu" if _isinstance(exc, _CpuLimit) else "time" if _isinstance(exc, _TimeLimit) else \
            "memory" if _isinstance(exc, MemoryError) else None
        try:
            _setitimer(signal.ITIMER_REAL, 0)
            self.in_user_code[0] = False
            self.builtins.update(self.pristine_builtins)
            self.set_limits(None, None)
            details = _shorten(self.format(exc))
        except BaseException:
            details = _type(exc).__name__
        return {"status": "error", "limit": limit, "details": details}

    # -- in the zygote --

    def run_grade(self, request: bytes) -> dict[str, Any] | bytes:
        """Fork, let the child grade, and relay its raw answer (unchecked and unparsed: the parent
        checks it); the request's JSON is parsed in the child, so no grade's data reaches the zygote.

        The child is reaped before the answer goes out: when the parent has it, the grade's process
        is gone. One that did not answer gives its exit status instead."""
        read_end, write_end = _pipe()
        pid = _fork()
        if pid == 0:
            _close(read_end)
            try:
                self.child(request, write_end)
            finally:
                _exit(70)
        _close(write_end)
        try:
            data, overtime, too_large = self.read_child(read_end, _LIMITS.unpack_from(request, 1)[0] + CHILD_GRACE_S)
        finally:
            _close(read_end)
        if data is not None or overtime or too_large:
            _kill(pid, signal.SIGKILL)  # one that answered is exiting anyway (a thread of it may still run)
        status = _waitpid(pid, 0)[1]
        if data is not None:
            return ANSWER + data
        self.clean_workdir()
        return {"status": "child", "overtime": overtime, "too_large": too_large,
                "exitcode": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}

    @staticmethod
    def read_child(fd: int, limit: float) -> tuple[bytes | None, bool, bool]:
        """The child's one message: (its bytes or None, past the time limit, too large)."""
        deadline = _monotonic() + limit
        try:
            header = _read_exact(fd, _HEADER.size, deadline)
            if header is None:
                return None, False, False
            size = _HEADER.unpack(header)[0]
            if size > MAX_ANSWER:
                return None, False, True
            return _read_exact(fd, size, deadline), False, False
        except TimeoutError:
            return None, True, False

    def finish_grade(self) -> None:
        """After an answer: make sure the grade left nothing for the next grade."""
        if self.kill_strays():
            self.stale = True
        self.clean_workdir()

    def workdir_state(self) -> dict[str, tuple[int, ...]]:
        """Every entry under the working directory: (inode, size, mtime) for files, (inode,) for directories."""
        state, pending = {}, [self.workdir]
        while pending:
            with _scandir(pending.pop()) as entries:
                for entry in entries:
                    info = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        state[entry.path] = (info.st_ino,)
                        pending.append(entry.path)
                    else:
                        state[entry.path] = (info.st_ino, info.st_size, info.st_mtime_ns)
        return state

    def clean_workdir(self) -> None:
        """Remove what a grade created in the working directory; a changed file from the load makes
        the zygote stale (the next grade goes to a fresh one)."""
        now = self.workdir_state()
        if now == self.baseline:
            return
        if any(now.get(path) != before for path, before in self.baseline.items()):
            self.stale = True
            return
        for path in sorted(now.keys() - self.baseline.keys(), key=len, reverse=True):
            try:
                os.rmdir(path) if len(now[path]) == 1 else os.remove(path)
            except OSError:
                self.stale = True

    def kill_strays(self) -> bool:
        """Kill processes grader code started around the audit hook; True if there were any.

        The zygote is PID 1 of its namespace or a child subreaper, so while any descendant
        lives it has a child.
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

    def load(self, source: str, timeout: float, memory_mb: int) -> dict[str, Any]:
        """Compile and run ``source`` once, in the zygote; every grade's process inherits the result."""
        self.set_limits(memory_mb, timeout)
        self.in_user_code[0] = True
        _setitimer(signal.ITIMER_REAL, timeout)
        try:
            grade = self.compile_source(source)
        except BaseException as exc:  # a limit (compile_source reports every other exception)
            return {**self.failure(exc), "recycle": True}
        finally:
            _setitimer(signal.ITIMER_REAL, 0)
            self.in_user_code[0] = False
            self.set_limits(None, None)
        if _isinstance(grade, str):
            return {"status": "error", "details": grade}
        self.grade = grade
        self.baseline = self.workdir_state()
        gc.collect()
        gc.freeze()  # what the load made is never collected again: grades copy fewer pages
        return {"status": "loaded"}

    def set_limits(self, memory_mb: int | None, timeout: float | None, fresh: bool = False) -> None:
        """Limits for one call (``None``: the hard caps and no CPU limit). ``fresh``: a new
        process, which has used no CPU time yet."""
        res = self.resource
        res.setrlimit(res.RLIMIT_AS, (self.hard_as if memory_mb is None else _min(memory_mb * MB, self.hard_as),
                                      self.hard_as))
        if timeout is None:
            res.setrlimit(res.RLIMIT_CPU, (res.RLIM_INFINITY, res.RLIM_INFINITY))
        else:
            used = 0 if fresh else sum(res.getrusage(res.RUSAGE_SELF)[:2])
            res.setrlimit(res.RLIMIT_CPU, (_int(used + timeout * self.cores) + 1, res.RLIM_INFINITY))

    def compile_source(self, source: str) -> Any:
        """The ``grade`` function defined by ``source``, or a text saying why there is none."""
        filename = "<grader>"
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


def _install_filters(zygote: _Zygote, mechanisms: dict[str, str]) -> None:
    """The zygote's seccomp filter now, and the per-grade one in each fork (tried once here)."""
    machine = os.uname().machine
    programs = [seccomp_program(machine, per_grade) for per_grade in (False, True)]
    if zygote.libc is None or programs[0] is None or programs[1] is None:
        mechanisms["syscalls"] = f"audit hook only (no seccomp filter for {machine})"
        return
    try:
        zygote.libc.seccomp_installer(*programs[0])()
    except OSError as exc:
        mechanisms["syscalls"] = f"audit hook only (seccomp refused: {exc})"
        return
    zygote.grade_filter = zygote.libc.seccomp_installer(*programs[1])
    os.register_at_fork(after_in_child=zygote.after_fork_in_child)
    probe = os.fork()  # the per-grade filter must install, or no grade runs
    if probe == 0:
        os._exit(0)
    if os.waitpid(probe, 0)[1] != 0:
        raise OSError("the per-grade seccomp filter could not be installed")
    mechanisms["syscalls"] = (
        "kernel (seccomp-BPF, architecture checked: socket, exec, ptrace, mount, namespaces, bpf, "
        "perf_event_open, keyrings, userfaultfd, io_uring and module/kexec calls refused in the zygote; "
        "each grade's process also refuses fork, vfork and clone without CLONE_THREAD) + audit hook")


def _main() -> None:
    config = json.loads(sys.argv[-1])
    fd_in, fd_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # print() in a grader must not corrupt the protocol
    mechanisms: dict[str, str] = {"environment": "minimal (PATH, locale, HOME/TMPDIR = workdir)"}
    root = os.geteuid() == 0
    _raise_oom_score()
    try:
        libc: _Libc | None = _Libc()
    except (OSError, AttributeError):
        libc = None
    flags = _unshare(libc, root, mechanisms)
    _fork_zygote((fd_in, fd_out))  # from here on this is the zygote
    readable = _zygote_mounts(libc, config, flags, root, mechanisms)
    os.chdir(config["workdir"])
    _set_fixed_limits(config, mechanisms)
    zygote = _Zygote(config, len(config["cores"]), libc)  # imports what it needs while it may still read everything
    zygote.own_uid = _drop_privileges(config, libc, readable, mechanisms)
    mechanisms.setdefault("filesystem", "audit hook")
    _install_audit_hook(config["workdir"], zygote.in_user_code)
    zygote.fds = (fd_in, fd_out)
    _install_filters(zygote, mechanisms)
    mechanisms["grades"] = ("one grader source per worker; each grade runs in a fresh fork of the zygote that "
                            "loaded it; gradeloop's own process checks the returned value")
    os.dup2(null, 2)
    send_message(fd_out, {"ready": True, "pid": os.getpid(), "uid": os.getuid(), "mechanisms": mechanisms})
    zygote.serve(fd_in, fd_out)


if __name__ == "__main__":
    _main()
