"""The ``python`` grader: OpenAI's contract, the sandbox, and the warm worker pool."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
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


def test_no_secrets_in_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    _python.shutdown()  # workers start now, with the secret in this process's environment
    source = ("import os\n"
              "def grade(s, i):\n"
              "    if os.environ.get('OPENAI_API_KEY') == 'sk-test-secret':\n"
              "        return 1.0\n"
              "    try:\n"
              "        parent = open(f'/proc/{os.getppid()}/environ', 'rb').read()\n"
              "    except OSError:\n"
              "        return 0.0\n"
              "    return float(b'sk-test-secret' in parent)\n")
    result = run(source)
    assert result.score == 0.0
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


def test_warm_workers_are_reused():
    source = "import os\ndef grade(s, i):\n    return os.getpid() % 1000 / 1000\n"
    scores = {run(source).score for _ in range(5)}
    assert len(scores) == 1
    assert scores != {os.getpid() % 1000 / 1000}


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
    assert {"network", "filesystem", "processes", "memory", "cpu", "environment"} <= set(info["mechanisms"])


def _sandbox_processes() -> set[int]:
    """Live (not zombie) processes running as a sandbox uid, other than the pool's workers."""
    from gradeloop.graders._sandbox import UID_BASE

    pool = _python._POOL
    workers = {w.pid for w in pool._all.values()} if pool else set()
    found = set()
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) >= UID_BASE and not fields["State"].strip().startswith("Z"):
            found.add(int(name))
    return found - workers


@pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                    reason="uses the 3.11 signature of _posixsubprocess.fork_exec")
def test_processes_started_around_the_hook_are_capped_and_killed():
    skip_without_own_uid()
    exe = os.path.realpath(sys.executable)
    source = f"""
import _posixsubprocess, os, time
BOMB = "import os, time\\nwhile True:\\n    try: os.fork()\\n    except OSError: time.sleep(0.01)\\n"
def grade(s, i):
    exe = {exe!r}
    _posixsubprocess.fork_exec([exe, "-c", BOMB], [exe.encode()], True, (), None, None, -1, -1, -1, -1, -1, -1,
                               *os.pipe(), False, True, -1, None, None, None, -1, None, False)
    time.sleep(1)
    uid = os.getuid()
    return float(sum(1 for p in os.listdir("/proc") if p.isdigit() and os.stat("/proc/" + p).st_uid == uid))
"""
    result = run(source, timeout_seconds=10)
    assert 1 < result.score <= 32  # the bomb ran, and RLIMIT_NPROC stopped it
    assert _sandbox_processes() == set()  # and nothing of it outlived the call
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
