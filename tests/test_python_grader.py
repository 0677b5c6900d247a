"""The ``python`` grader: OpenAI's contract, the sandbox, and the warm worker pool."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gradeloop.graders import grade, grade_many
from gradeloop.graders import _python
from gradeloop.spec import PythonGrader

SAMPLE = {"output_text": "Paris", "output_tools": [], "choices": []}
ITEM = {"reference_answer": "Paris"}
NORMAL = "def grade(sample, item):\n    return 0.75\n"


def grader(source: str, **fields) -> PythonGrader:
    return PythonGrader(type="python", name="p", source=source, **fields)


def run(source: str, sample: dict | None = None, item: dict | None = None, **fields):
    return asyncio.run(grade(grader(source, **fields), SAMPLE if sample is None else sample,
                             ITEM if item is None else item))


def assert_runtime_error(result, *needles: str) -> str:
    assert result.score == 0.0
    assert result.passed is False
    assert result.errors["python_grader_runtime_error"] is True
    details = result.errors["python_grader_runtime_error_details"]
    for needle in needles:
        assert needle in details, details
    return details


def skip_without_own_uid() -> None:
    if "RLIMIT_NPROC" not in _python.sandbox_info()["mechanisms"]["processes"]:
        pytest.skip("workers have no uid of their own here (the tests do not run as root)")


def skip_without_seccomp() -> None:
    if not _python.sandbox_info()["mechanisms"]["syscalls"].startswith("kernel"):
        pytest.skip("no seccomp filter here")


def has_pid_namespace() -> bool:
    return _python.sandbox_info()["mechanisms"]["pids"].startswith("kernel (own PID namespace:")


def assert_host_fine() -> None:
    # the host process is intact and a later grade still works
    assert run(NORMAL).score == 0.75


@pytest.fixture(scope="module", autouse=True)
def _stop_pool():
    yield
    _python.shutdown()


# ── the contract ──


def test_score_and_sample_item_are_passed():
    source = ("def grade(sample, item):\n"
              "    return 0.75 if sample['output_text'] == item['reference_answer'] else 0.25\n")
    assert run(source).score == 0.75
    assert run(source, sample={**SAMPLE, "output_text": "Lyon"}).score == 0.25


def test_pass_threshold():
    assert run(NORMAL, pass_threshold=0.7).passed is True
    assert run(NORMAL, pass_threshold=0.75).passed is True
    assert run(NORMAL, pass_threshold=0.8).passed is False
    assert run(NORMAL).passed is False  # no threshold: pass means >= 1
    assert run("def grade(s, i):\n    return 1\n").passed is True


def test_numbers_accepted():
    assert run("def grade(s, i):\n    return 3\n").score == 3.0
    assert run("def grade(s, i):\n    return True\n").score == 1.0  # bool is a number here
    assert run("from fractions import Fraction\ndef grade(s, i):\n    return Fraction(1, 4)\n").score == 0.25


def test_exception_gives_traceback():
    result = run("def grade(sample, item):\n    raise ValueError('boom')\n")
    details = assert_runtime_error(result, "raise ValueError('boom')", "ValueError: boom", "line 2")
    assert "_sandbox" not in details  # the sandbox's own frames are left out
    assert result.to_run_response(grader(NORMAL))["metadata"]["errors"]["python_grader_runtime_error"] is True


@pytest.mark.parametrize("value", ["float('nan')", "float('inf')", "'abc'", "None", "[0.5]"])
def test_invalid_float(value):
    assert_runtime_error(run(f"def grade(s, i):\n    return {value}\n"), "grade returned")


def test_compile_error():
    assert_runtime_error(run("def grade(s, i)\n    return 1\n"), "does not compile", "SyntaxError")


def test_error_while_loading():
    assert_runtime_error(run("import no_such_module_here\ndef grade(s, i):\n    return 1\n"),
                         "ModuleNotFoundError")


def test_missing_grade():
    assert_runtime_error(run("def score(s, i):\n    return 1\n"), "grade(sample, item)")
    assert_runtime_error(run("grade = 1\n"), "grade(sample, item)")


@pytest.mark.parametrize("signature", ["sample", "sample, item, extra", "*args", "sample, item, extra=1"])
def test_wrong_arity(signature):
    assert_runtime_error(run(f"def grade({signature}):\n    return 1\n"), "exactly two arguments")


def test_keyword_only_extras_are_fine():
    assert run("def grade(sample, item, *, scale=0.5):\n    return scale\n").score == 0.5


def test_unserializable_sample_is_reported():
    result = asyncio.run(grade(grader(NORMAL), {"output_text": object()}, ITEM))
    assert result.score == 0.0 and result.errors["other_error"] is True and result.passed is None


# ── the sandbox ──


def test_no_network():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        source = ("import socket\n"
                  "def grade(s, i):\n"
                  f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')\n"
                  "    return 1.0\n")
        assert_runtime_error(run(source), "not allowed")
        raw = "import socket\ndef grade(s, i):\n    socket.socket()\n    return 1.0\n"
        assert_runtime_error(run(raw), "socket")
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    assert_host_fine()


# The host process: it has the secret in its environment (set by exec, so in its
# /proc/<pid>/environ too) when it starts the workers, and runs the search once outside the
# sandbox, to show the search finds the secret where it can be seen.
HOST = """
import asyncio, json, os, sys
from gradeloop.graders import grade
from gradeloop.spec import PythonGrader
source = open(sys.argv[1]).read()
item = {"host_pid": os.getpid()}
namespace = {}
exec(compile(source, "search", "exec"), namespace)
try:
    namespace["grade"]({}, item)
except RuntimeError as exc:
    outside = json.loads(str(exc))
result = asyncio.run(grade(PythonGrader(type="python", name="search", source=source), {}, item))
print(json.dumps({"outside": outside, "errors": result.errors}))
"""
# Looks for SECRET by every route a grader has: its environment, and every /proc file of
# every visible process (read through libc, around the audit hook); reports through an exception.
SEARCH = """
import ctypes, json, os
SECRET = os.environ.get("GRADELOOP_TEST_SECRET") or {secret!r}
libc = ctypes.CDLL(None, use_errno=True)
def read(path):
    fd = libc.open(path.encode(), os.O_RDONLY)
    if fd < 0:
        return None
    chunks, buffer = [], ctypes.create_string_buffer(1 << 16)
    while (n := libc.read(fd, buffer, len(buffer))) > 0:
        chunks.append(buffer.raw[:n])
    libc.close(fd)
    return b"".join(chunks)
def grade(sample, item):
    found, read_ok = [], []
    if any(SECRET in value for value in os.environ.values()):
        found.append("os.environ")
    pids = sorted({{int(p) for p in os.listdir("/proc") if p.isdigit()}} | {{item["host_pid"], os.getppid()}})
    for pid in pids:
        for name in ("environ", "cmdline"):
            data = read(f"/proc/{{pid}}/{{name}}")
            if data is not None:
                read_ok.append(f"{{pid}}/{{name}}")
                if SECRET.encode() in data:
                    found.append(f"/proc/{{pid}}/{{name}}")
    raise RuntimeError(json.dumps({{"found": found, "read": read_ok, "self": os.getpid(), "visible": pids}}))
"""


def _reported(details: str) -> dict:
    """The JSON a grader raised as ``RuntimeError(json.dumps(...))``, from its traceback."""
    return json.loads(details.strip().splitlines()[-1].split("RuntimeError: ", 1)[1])


def test_secret_in_the_environment_of_the_process_that_starts_workers_is_unreachable(tmp_path: Path):
    secret = f"sk-gradeloop-test-{uuid.uuid4().hex}"
    source = tmp_path / "search.py"
    source.write_text(SEARCH.format(secret=secret))
    host = tmp_path / "host.py"
    host.write_text(HOST)
    env = {**os.environ, "OPENAI_API_KEY": secret, "GRADELOOP_TEST_SECRET": secret,
           "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(host), str(source)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # outside the sandbox the same search finds the secret, in the environment and in /proc
    assert "os.environ" in report["outside"]["found"]
    assert any(path.endswith("/environ") for path in report["outside"]["found"])
    inside = _reported(report["errors"]["python_grader_runtime_error_details"])
    assert inside["found"] == []
    assert f"{inside['self']}/cmdline" in inside["read"]  # the search did read /proc
    if has_pid_namespace():  # and only the sandbox's own processes were there to read
        assert {int(path.split("/")[0]) for path in inside["read"]} == {1, inside["self"]}


def test_minimal_environment():
    env_keys = ("import os\n"
                "def grade(s, i):\n"
                "    return float(len(os.environ) < 15 and os.environ['HOME'] == os.getcwd())\n")
    assert run(env_keys).score == 1.0
    assert_host_fine()


def test_writes_only_in_workdir(tmp_path: Path):
    target = tmp_path / "escape.txt"
    source = f"def grade(s, i):\n    open({str(target)!r}, 'w').write('x')\n    return 1.0\n"
    assert_runtime_error(run(source), "not allowed")
    assert not target.exists()
    victim = tmp_path / "keep.txt"
    victim.write_text("keep")
    assert_runtime_error(run(f"import os\ndef grade(s, i):\n    os.remove({str(victim)!r})\n"), "not allowed")
    assert victim.read_text() == "keep"
    inside = ("import os, tempfile\n"
              "def grade(s, i):\n"
              "    open('scratch.txt', 'w').write('ok')\n"
              "    with tempfile.NamedTemporaryFile('w') as handle:\n"
              "        handle.write('ok')\n"
              "    return float(open('scratch.txt').read() == 'ok')\n")
    assert run(inside).score == 1.0
    assert_host_fine()


def test_no_processes():
    fork_bomb = "import os\ndef grade(s, i):\n    while True:\n        os.fork()\n"
    assert_runtime_error(run(fork_bomb, timeout_seconds=5), "os.fork")
    popen = "import subprocess\ndef grade(s, i):\n    subprocess.Popen(['true']).wait()\n    return 1.0\n"
    assert_runtime_error(run(popen, timeout_seconds=5), "subprocess.Popen")
    system = "import os\ndef grade(s, i):\n    return float(os.system('true'))\n"
    assert_runtime_error(run(system, timeout_seconds=5), "os.system")
    kill_parent = "import os, signal\ndef grade(s, i):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    assert_runtime_error(run(kill_parent), "os.kill")
    assert_host_fine()


def test_kernel_caps_processes_when_root():
    skip_without_own_uid()
    # threads count against RLIMIT_NPROC too, and the audit hook does not stop them
    source = ("import threading, time\n"
              "def grade(s, i):\n"
              "    started = 0\n"
              "    try:\n"
              "        for _ in range(200):\n"
              "            threading.Thread(target=time.sleep, args=(1,), daemon=True).start()\n"
              "            started += 1\n"
              "    except RuntimeError:\n"
              "        pass\n"
              "    return float(started)\n")
    assert run(source).score < 64
    assert_host_fine()


def test_time_limit():
    result = run("def grade(s, i):\n    while True:\n        pass\n", timeout_seconds=2)
    assert_runtime_error(result, "time limit of 2 s exceeded")
    assert_host_fine()


def test_time_limit_when_the_alarm_is_disabled():
    # the grader turns the in-process alarm off: the parent kills the worker's process group
    source = ("import signal\n"
              "def grade(s, i):\n"
              "    signal.setitimer(signal.ITIMER_REAL, 0)\n"
              "    signal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
              "    while True:\n"
              "        pass\n")
    assert_runtime_error(run(source, timeout_seconds=1), "time limit of 1 s exceeded")
    assert _sandbox_processes() == set()
    assert_host_fine()


def test_memory_limit():
    result = run("def grade(s, i):\n    x = b'x' * 10**10\n    return 1.0\n", memory_mb=256)
    assert_runtime_error(result, "memory limit of 256 MB exceeded")
    assert_host_fine()


def test_crash_is_the_graders_runtime_error():
    assert_runtime_error(run("import os\ndef grade(s, i):\n    os._exit(3)\n"), "exited with status 3")
    assert_host_fine()


def test_worker_that_cannot_start_is_a_server_error(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")  # workers exit before their handshake
    pool = _python.WorkerPool(size=1)
    monkeypatch.setattr(_python, "_POOL", pool)
    try:
        result = asyncio.run(grade(grader(NORMAL), SAMPLE, ITEM))
    finally:
        pool.shutdown()
    assert result.score == 0.0
    assert result.errors["python_grader_server_error"] is True
    assert result.errors["python_grader_server_error_type"] == "worker_start_failed"
    assert result.infrastructure_error and result.passed is None


# ── warm workers ──


def test_warm_zygote_loads_the_source_once():
    # module-level code runs once, in the worker's zygote; every grade sees what it made
    source = "import random\nTOKEN = random.random()\ndef grade(s, i):\n    return TOKEN\n"
    scores = {run(source).score for _ in range(5)}
    assert len(scores) == 1


def test_grade_many_in_order():
    source = "def grade(sample, item):\n    return item['k'] / 1000\n"
    pairs = [({"output_text": str(k)}, {"k": k}) for k in range(200)]
    results = asyncio.run(grade_many(grader(source), pairs))
    assert [r.score for r in results] == [k / 1000 for k in range(200)]
    assert all(r.passed is False and not r.errors for r in results)


def test_grade_many_mixed_outcomes():
    source = "def grade(sample, item):\n    return 1 / item['k']\n"
    results = asyncio.run(grade_many(grader(source), [({}, {"k": k}) for k in (1, 0, 2)]))
    assert [r.score for r in results] == [1.0, 0.0, 0.5]
    assert [r.passed for r in results] == [True, False, False]
    assert "ZeroDivisionError" in results[1].errors["python_grader_runtime_error_details"]


def test_cold_grading():
    result = _python.grade_python_cold(grader(NORMAL, pass_threshold=0.5), SAMPLE, ITEM)
    assert result.score == 0.75 and result.passed is True


def test_sandbox_info_names_every_mechanism():
    info = _python.sandbox_info()
    assert {"network", "filesystem", "processes", "memory", "cpu", "environment", "pids", "syscalls",
            "grades"} <= set(info["mechanisms"])
    if os.geteuid() == 0:  # as root (and in CI) every kernel layer is there
        assert info["mechanisms"]["pids"].startswith("kernel (own PID namespace:")
        assert info["mechanisms"]["syscalls"].startswith("kernel (seccomp-BPF")
        assert info["pid"] == 1  # the zygote is PID 1 of its namespace


def _sandbox_processes() -> set[int]:
    """Live (not zombie) processes running as one of this process's sandbox uids, other than
    the pool's workers and their zygotes (each worker's one child). Other test sessions on the
    machine have sandbox uids of their own."""
    from gradeloop.graders._sandbox import UID_BASE

    first_uid = UID_BASE + (os.getpid() % (1 << 20)) * 256
    pool = _python._POOL
    workers = {w.pid for w in pool.live_workers()} if pool else set()
    found = set()
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["PPid"]) in workers:
            continue
        if first_uid <= int(fields["Uid"].split()[0]) < first_uid + 256 and not fields["State"].strip().startswith("Z"):
            found.add(int(name))
    return found - workers


@pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                    reason="uses the 3.11 signature of _posixsubprocess.fork_exec")
def test_processes_started_around_the_hook_are_refused_by_the_kernel():
    skip_without_seccomp()
    exe = os.path.realpath(sys.executable)
    source = f"""
import _posixsubprocess, os
def grade(s, i):
    exe = {exe!r}
    try:
        _posixsubprocess.fork_exec([exe, "-c", "pass"], [exe.encode()], True, (), None, None, -1, -1, -1, -1, -1,
                                   -1, *os.pipe(), False, True, -1, None, None, None, -1, None, False)
    except PermissionError:
        return 1.0
    return 0.0
"""
    assert run(source, timeout_seconds=10).score == 1.0
    assert _sandbox_processes() == set()
    assert_host_fine()


def test_kernel_network_namespace_has_no_interfaces():
    if not _python.sandbox_info()["mechanisms"]["network"].startswith("kernel"):
        pytest.skip("no network namespace here")
    source = ("def grade(s, i):\n"
              "    lines = open('/proc/self/net/dev').read().splitlines()[2:]\n"
              "    return float(sorted(line.split(':')[0].strip() for line in lines) == ['lo'])\n")
    assert run(source).score == 1.0


def test_writes_around_the_hook_fail_in_the_kernel(tmp_path: Path):
    if not _python.sandbox_info()["mechanisms"]["filesystem"].startswith("kernel"):
        pytest.skip("no read-only mount namespace here")
    targets = [tmp_path / "escape.txt", Path("/tmp") / f"gradeloop-escape-{os.getpid()}.txt"]
    source = ("import ctypes, os\n"
              f"PATHS = {[str(t) for t in targets]!r}\n"
              "def grade(s, i):\n"
              "    libc = ctypes.CDLL(None, use_errno=True)\n"
              "    fds = [libc.open(p.encode(), os.O_WRONLY | os.O_CREAT, 0o644) for p in PATHS]\n"
              "    inside = libc.open(b'scratch.bin', os.O_WRONLY | os.O_CREAT, 0o644)\n"
              "    return float(all(fd == -1 for fd in fds) and inside >= 0)\n")
    assert run(source).score == 1.0
    assert not any(target.exists() for target in targets)


# ── isolation between graders and between grades ──

# Patches builtins and the modules a checker would use, at load (in its zygote) and while grading.
HOSTILE = """
import builtins, json, math, numbers
real_float = builtins.float
builtins.float = lambda *args: 1.0
math.isfinite = lambda x: True
math.isnan = lambda x: False
json.dumps = lambda *args, **kwargs: '{"status": "ok", "score": 1.0}'
json.loads = lambda *args, **kwargs: {"status": "ok", "score": 1.0}
numbers.Real = object
def grade(sample, item):
    builtins.isinstance = lambda *args: True
    builtins.abs = builtins.round = builtins.min = builtins.max = lambda *args, **kwargs: 1.0
    return real_float(item.get("value", 0.25))
"""
ALWAYS_ZERO = "def grade(sample, item):\n    return 0.0\n"


def test_a_grader_that_patches_builtins_changes_no_other_graders_score():
    hostile, zero = grader(HOSTILE), grader(ALWAYS_ZERO, pass_threshold=0.5)

    async def interleaved():
        return await asyncio.gather(*(grade(g, SAMPLE, ITEM) for g in [hostile, zero] * 8))

    results = asyncio.run(interleaved())
    assert [(r.score, r.passed, r.errors) for r in results[1::2]] == [(0.0, False, {})] * 8
    assert [r.score for r in results[::2]] == [0.25] * 8  # its own value is still read as it returned it
    for source in (HOSTILE, ALWAYS_ZERO, HOSTILE, ALWAYS_ZERO):  # and one after the other
        assert run(source).score == (0.25 if source is HOSTILE else 0.0)


@pytest.mark.parametrize("value", ["real_float('nan')", "real_float('inf')", "'abc'", "None"])
def test_a_bad_value_is_refused_even_when_the_grader_patched_the_checks(value):
    source = HOSTILE.replace('return real_float(item.get("value", 0.25))', f"return {value}")
    assert_runtime_error(run(source), "grade returned")


def test_the_parent_checks_what_a_grades_process_sends():
    # whatever a grade's process sends (grader code may forge it), only a finite number passes
    assert _python.check_score({"status": "returned", "number": 0.5}).score == 0.5
    for number in (float("nan"), float("-inf"), 10**400, "0.5", True, [1.0], None):
        result = _python.check_score({"status": "returned", "number": number, "type": "x", "repr": "x"})
        assert result.errors["python_grader_runtime_error"] is True and result.score == 0.0
    assert _python.check_score({"status": "ok", "score": 1.0}).errors["python_grader_runtime_error"] is True


def test_the_parent_reads_a_grades_raw_answer_and_checks_it():
    # a returned number comes as b"n" + 8 bytes, anything else as JSON; the zygote relays both
    # unparsed, so whatever bytes arrive (grader code may forge them), only a finite number passes
    def result(data: bytes):
        return _python._from_child({"status": "child", "answer": data}, 1.0, 64)

    assert result(b"n" + struct.pack("<d", 0.5)).score == 0.5
    assert result(json.dumps({"status": "returned", "number": 0.25}).encode()).score == 0.25
    for data in (b"n" + struct.pack("<d", float("nan")), b"n" + struct.pack("<d", float("inf")), b"n\x00",
                 b"\xff garbage", b'{"status": "ok", "score": 1.0}', b"[1.0]"):
        assert result(data).errors["python_grader_runtime_error"] is True and result(data).score == 0.0
    assert "ValueError: x" in result(b'{"status": "error", "details": "ValueError: x"}').errors[
        "python_grader_runtime_error_details"]


def test_the_worker_imports_nothing_that_runs_python_at_every_fork():
    # threading and random register at-fork hooks: Python code that would run in every grade's
    # process (threading's alone tripled the cost of a fork); the worker program imports neither
    source = ("import sys\n"
              "LOADED = [name for name in ('threading', 'random') if name in sys.modules]\n"
              "def grade(sample, item):\n"
              "    return 0.0 if LOADED else 1.0\n")
    assert run(source).score == 1.0


def test_grades_do_not_carry_state_and_do_not_depend_on_order():
    source = ("CALLS = 0\n"
              "SEEN = []\n"
              "def grade(sample, item):\n"
              "    global CALLS\n"
              "    CALLS += 1\n"
              "    SEEN.append(item['k'])\n"
              "    return CALLS / 10 + len(SEEN) / 100\n")
    assert [run(source, item={"k": k}).score for k in range(4)] == [0.11] * 4
    many = asyncio.run(grade_many(grader(source), [({}, {"k": k}) for k in range(30)]))
    assert [r.score for r in many] == [0.11] * 30


def test_files_a_grade_leaves_do_not_reach_the_next_grade():
    source = ("import os\n"
              "open('loaded.txt', 'w').write('0')\n"
              "def grade(sample, item):\n"
              "    count = int(open('count.txt').read()) + 1 if os.path.exists('count.txt') else 1\n"
              "    open('count.txt', 'w').write(str(count))\n"
              "    if item['touch']:  # changes what the load left: the next grade gets a fresh zygote\n"
              "        open('loaded.txt', 'w').write(str(count))\n"
              "    return count / 10 + int(open('loaded.txt').read()) / 100\n")
    touches = [k % 3 == 0 for k in range(7)]
    scores = [run(source, item={"touch": touch}) for touch in touches]
    assert [(r.score, r.errors) for r in scores] == [(0.11 if touch else 0.1, {}) for touch in touches]


def test_workers_serve_one_source_and_are_bounded():
    pool = _python.WorkerPool(size=1, max_workers=2)
    sources = [f"import os\nPID = os.getpid()\ndef grade(s, i):\n    return {k} / 10\n" for k in range(3)]
    try:
        for source in sources + sources:
            result = pool.grade_sync(grader(source), SAMPLE, ITEM)
            assert not result.errors and result.score == sources.index(source) / 10
            assert len(pool.live_workers()) <= 2  # the least recently used worker was closed
        assert len({w.sha for w in pool.live_workers()}) == len(pool.live_workers())
    finally:
        pool.shutdown()


# ── the kernel layers, reached around the audit hook ──

# dlsym itself is allowed: it reaches any libc function without the audit hook seeing the name
LIBC = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.dlsym.restype = ctypes.c_void_p
def raw(name, restype, *argtypes):
    return ctypes.CFUNCTYPE(restype, *argtypes, use_errno=True)(libc.dlsym(None, name.encode()))
def refused(rc):
    if rc != -1 or ctypes.get_errno() != 1:
        raise RuntimeError(f"not refused with EPERM: rc={rc} errno={ctypes.get_errno()}")
"""


def assert_kernel_refuses(body: str) -> None:
    skip_without_seccomp()
    result = run(LIBC + "def grade(s, i):\n" + body + "    return 1.0\n")
    assert result.score == 1.0, result.errors
    assert_host_fine()


def test_kernel_refuses_sockets():
    assert_kernel_refuses(
        "    socket = raw('socket', ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int)\n"
        "    for family in (1, 2, 10):  # AF_UNIX (sockets in the filesystem), AF_INET, AF_INET6\n"
        "        refused(socket(family, 1, 0))\n"
        "    pair = (ctypes.c_int * 2)()\n"
        "    refused(raw('socketpair', ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)"
        "(1, 1, 0, pair))\n")


def test_kernel_refuses_exec():
    assert_kernel_refuses(
        "    argv = (ctypes.c_char_p * 3)(b'/bin/sh', b'-c', None)\n"
        "    refused(raw('execve', ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p)"
        "(b'/bin/sh', argv, None))\n")


def _nr(name: str) -> int:
    from gradeloop.graders._sandbox import _SYSCALLS

    machine = os.uname().machine
    if machine not in _SYSCALLS:
        pytest.skip(f"no syscall table for {machine}")
    return _SYSCALLS[machine][2][name]


def test_kernel_refuses_fork_but_not_threads():
    assert_kernel_refuses(
        "    pid = raw('fork', ctypes.c_int)()\n"
        "    if pid == 0:\n"
        "        os._exit(0)\n"
        "    refused(pid)\n"
        f"    refused(raw('syscall', ctypes.c_long, ctypes.c_long, ctypes.c_long)({_nr('clone')}, 17))  # SIGCHLD\n"
        "    import threading\n"
        "    box = []\n"
        "    worker = threading.Thread(target=box.append, args=(1,))\n"
        "    worker.start()\n"
        "    worker.join()\n"
        "    assert box == [1]\n"
        "    status = open('/proc/self/status').read()\n"
        "    assert 'Seccomp:\\t2' in status and 'Seccomp_filters:\\t2' in status, status\n")


def test_kernel_refuses_namespaces_ptrace_and_more():
    # each of these is allowed to an unprivileged process by a default kernel
    syscall = "raw('syscall', ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long)"
    assert_kernel_refuses(
        "    refused(raw('unshare', ctypes.c_int, ctypes.c_int)(0x10000000))  # CLONE_NEWUSER\n"
        "    refused(raw('ptrace', ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)"
        "(0, 0, None, None))  # PTRACE_TRACEME\n"
        f"    refused({syscall}({_nr('userfaultfd')}, 1, 0))  # UFFD_USER_MODE_ONLY\n"
        f"    refused({syscall}({_nr('io_uring_setup')}, 1, 0))\n"
        f"    refused({syscall}({_nr('keyctl')}, 0, -3))  # KEYCTL_GET_KEYRING_ID of the session keyring\n")


def test_proc_shows_no_host_process():
    if not has_pid_namespace():
        pytest.skip("no PID namespace here")
    secret = f"gradeloop-argv-secret-{uuid.uuid4().hex}"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", secret])
    try:
        source = SEARCH.format(secret=secret)
        report = _reported(assert_runtime_error(run(source, item={"host_pid": holder.pid}), "RuntimeError"))
    finally:
        holder.kill()
        holder.wait()
    assert report["found"] == []
    assert f"{report['self']}/cmdline" in report["read"]
    assert {int(path.split("/")[0]) for path in report["read"]} == {1, report["self"]}
    assert set(report["visible"]) - {holder.pid, 0} == {1, report["self"]}  # the zygote and the grade alone


# ── scores outside [0, 1] ──

AS_GIVEN = "def grade(sample, item):\n    return item['v']\n"


def test_score_outside_the_unit_interval_is_kept_and_flagged_in_evals():
    from gradeloop import Store, eval_from_dict, output_item_objects, run_eval

    rows = [{"item": {"v": v}, "sample": {"output_text": "x"}} for v in (0.5, 3.5, -1)]
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "python", "name": "raw", "source": AS_GIVEN, "pass_threshold": 0.5}],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": rows}},
    })
    [run_id] = run_eval(spec)
    results = [item["results"][0] for item in output_item_objects(Store(), run_id)]
    assert [(r["score"], r["passed"]) for r in results] == [(0.5, True), (3.5, True), (-1.0, False)]
    assert [r.get("details", {}).get("score_out_of_range", False) for r in results] == [False, True, True]
    assert not any(r.get("errors") for r in results)


def test_reward_outside_the_unit_interval_is_the_eval_score_and_flagged(caplog):
    from gradeloop.rewards import as_reward

    reward = as_reward({"type": "python", "name": "raw", "source": AS_GIVEN})
    with caplog.at_level("WARNING", logger="gradeloop.rewards"):
        assert reward(["p"] * 3, ["a", "b", "c"], v=[0.5, 3.5, -1]) == [0.5, 3.5, -1.0]
        assert reward(["p"], ["d"], v=[2]) == [2.0]
    assert [r.details.get("score_out_of_range", False) for r in reward.last_results] == [True]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "'raw' gave 2 of 3 rewards outside [0, 1]" in warnings[0]
