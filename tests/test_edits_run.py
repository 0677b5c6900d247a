"""run_tests (issue 16, point 2): a task's tests in the command sandbox: passing and failing
commands, a time limit, no network, nothing written outside the tree."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from gradeloop.edits import Tree, run_tests

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

FILES = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
}


def test_a_passing_and_a_failing_pytest_run():
    with Tree(FILES) as tree:
        run = run_tests(tree, ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_calc.py"])
        assert run.passed and run.returncode == 0 and not run.timed_out, run.output
        assert "1 passed" in run.output
        assert set(tree.files()) == set(FILES)  # no cache or bytecode left in the tree
        plain = run_tests(tree, ["python", "-m", "pytest", "-q", "tests/test_calc.py"])
        assert plain.passed and set(tree.files()) == set(FILES) and not (tree.path / ".pytest_cache").exists()
        tree.write({"calc.py": "def add(a, b):\n    return a - b\n"})
        run = run_tests(tree, ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_calc.py"])
        assert not run.passed and run.returncode == 1 and not run.timed_out
        assert "assert -1 == 5" in run.output


def test_a_command_past_its_time_limit_is_killed():
    with Tree({"spin.py": "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
                          "while True:\n    pass\n"}) as tree:
        run = run_tests(tree, ["python", "spin.py"], timeout=2)
    assert run.timed_out and not run.passed


def test_the_network_is_unreachable():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    probe = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
             "    print('CONNECTED')\nexcept OSError as exc:\n    print('REFUSED', type(exc).__name__)\n"
             "    raise SystemExit(3)\n")
    with Tree({"probe.py": probe}) as tree:
        run = run_tests(tree, ["python", "probe.py"], timeout=20)
    accept()
    server.close()
    assert run.returncode == 3 and "REFUSED" in run.output and "CONNECTED" not in run.output
    assert accepted == []


def test_writes_outside_the_tree_are_refused_and_inside_allowed(tmp_path):
    target = tmp_path / "outside.txt"
    os.chmod(tmp_path, 0o777)  # even a world-writable directory outside the tree stays out of reach
    script = (f"import pathlib, sys\nfailures = 0\nfor path in ({str(target)!r}, '/tmp/gradeloop-escape.txt'):\n"
              "    try:\n        open(path, 'w').write('escaped')\n        print('WROTE', path)\n"
              "    except OSError as exc:\n        failures += 1\n        print('REFUSED', path, exc.errno)\n"
              "pathlib.Path('inside.txt').write_text('ok')\nsys.exit(0 if failures == 2 else 1)\n")
    with Tree({"w.py": script}) as tree:
        run = run_tests(tree, ["python", "w.py"], timeout=30)
        assert (tree.path / "inside.txt").read_text() == "ok"
    assert run.passed, run.output
    assert not target.exists() and not os.path.exists("/tmp/gradeloop-escape.txt")


def test_a_subprocess_runs_and_secrets_do_not_reach_it(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value-123456")
    script = "import os, subprocess, sys\nprint(subprocess.run([sys.executable, '-c', 'print(40 + 2)'], " \
             "capture_output=True, text=True).stdout.strip())\nprint('KEY', os.environ.get('OPENAI_API_KEY'))\n"
    with Tree({"s.py": script}) as tree:
        run = run_tests(tree, ["python", "s.py"], timeout=30)
    assert run.passed and "42" in run.output and "KEY None" in run.output
    assert "sk-test-secret" not in run.output


def test_a_memory_hog_fails_within_its_limit():
    with Tree({"m.py": "x = bytearray(900 * 1024 * 1024)\nprint('ALLOCATED')\n"}) as tree:
        run = run_tests(tree, ["python", "m.py"], memory_mb=256, timeout=30)
    assert not run.passed and "ALLOCATED" not in run.output and "MemoryError" in run.output


def test_a_command_that_does_not_exist():
    with Tree({}) as tree:
        run = run_tests(tree, ["no-such-test-runner-xyz"], timeout=10)
    assert not run.passed and run.error and "could not start" in run.output


@pytest.mark.skipif(os.geteuid() != 0, reason="the own uid needs root")
def test_the_command_runs_as_an_unprivileged_uid_without_groups():
    script = "import os\nprint('IDS', os.getuid(), os.geteuid(), os.getgroups())\n"
    with Tree({"ids.py": script}) as tree:
        run = run_tests(tree, ["python", "ids.py"], timeout=30)
    assert run.passed, run.output
    uid, euid, groups = run.output.split("IDS ")[1].split(" ", 2)
    assert int(uid) == int(euid) != 0 and groups.strip() == "[]"
    assert "own uid" in run.mechanisms["user"] and "read-only" in run.mechanisms["filesystem"]


def test_the_command_cannot_reach_the_report_pipe():
    """The sandbox's report (how the command ended) travels on a pipe the command does not inherit:
    a failing command cannot forge a pass."""
    script = ("import json, os\nforged = json.dumps({'returncode': 0, 'timed_out': False}) + '\\n'\n"
              "for fd in range(3, 64):\n    try:\n        os.write(fd, forged.encode())\n        print('WROTE', fd)\n"
              "    except OSError:\n        pass\nraise SystemExit(1)\n")
    with Tree({"forge.py": script}) as tree:
        run = run_tests(tree, ["python", "forge.py"], timeout=30)
    assert not run.passed and run.returncode == 1 and "WROTE" not in run.output


def test_a_tree_in_a_private_temp_dir_still_runs(tmp_path, monkeypatch):
    import tempfile

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    with Tree(FILES) as tree:
        assert str(tree.path).startswith(str(private))
        run = run_tests(tree, ["python", "-m", "pytest", "-q", "tests/test_calc.py"], timeout=60)
    assert run.passed, run.output
