"""``suite code-edits from-repo`` (issue 16, point 4) on a small git repository the test builds:
only recent, small commits whose tests fail before and pass after become items; the rest are
listed with why."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest

from conftest import run_cli
from gradeloop.graders import grade
from gradeloop.spec import load_eval

CALC = "def add(a, b):\n    return a - b\n\n\ndef scale(x, k):\n    return x * k\n"
TEST = "from app.calc import add\n\n\ndef test_add_small():\n    assert add(2, 0) == 2\n"
TEST_FIXED = TEST + "\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def git(repo, *args, when="2026-08-01T10:00:00+00:00"):
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
           "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "GIT_CONFIG_GLOBAL": os.devnull}
    result = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def commit(repo, message, files, when):
    for path, text in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, when=when)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A repository whose history holds one commit of every kind the miner must tell apart."""
    repo = tmp_path_factory.mktemp("myservice")
    git(repo, "init", "-q")
    git(repo, "checkout", "-q", "-b", "main")
    shas = {"root": commit(repo, "start the service", {"app/__init__.py": "", "app/calc.py": CALC,
                                                         "tests/test_calc.py": TEST}, "2026-07-01T10:00:00+00:00")}
    shas["old"] = commit(repo, "old fix before the cut-off", {"app/calc.py": CALC.replace("x * k", "k * x")},
                         "2026-08-15T10:00:00+00:00")
    shas["good"] = commit(repo, "Fix add: it subtracted\n\nadd(2, 3) returned -1.",
                          {"app/calc.py": CALC.replace("a - b", "a + b").replace("x * k", "k * x"),
                           "tests/test_calc.py": TEST_FIXED}, "2026-09-02T10:00:00+00:00")
    shas["large"] = commit(repo, "Split the service into modules",
                           {f"app/m{i}.py": f"VALUE = {i}\n" for i in range(4)} |
                           {"tests/test_m.py": "from app.m0 import VALUE\n\n\ndef test_v():\n    assert VALUE == 0\n"},
                           "2026-09-03T10:00:00+00:00")
    shas["passes_before"] = commit(repo, "Document scale", {
        "app/calc.py": CALC.replace("a - b", "a + b").replace("x * k", "k * x").replace(
            "def scale(x, k):\n", 'def scale(x, k):\n    """x times k."""\n'),
        "tests/test_scale.py": "from app.calc import scale\n\n\ndef test_scale():\n    assert scale(2, 3) == 6\n"},
        "2026-09-04T10:00:00+00:00")
    git(repo, "checkout", "-q", "-b", "side")
    shas["side"] = commit(repo, "Add a README", {"README.md": "# myservice\n"}, "2026-09-04T12:00:00+00:00")
    git(repo, "checkout", "-q", "main")
    shas["fails_after"] = commit(repo, "Add sub (wrongly)", {
        "app/ops.py": "def sub(a, b):\n    return a + b\n",
        "tests/test_ops.py": "from app.ops import sub\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n"},
        "2026-09-05T10:00:00+00:00")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch side", "side", when="2026-09-07T10:00:00+00:00")
    shas["merge"] = git(repo, "rev-parse", "HEAD")
    shas["fix_sub"] = commit(repo, "Fix sub", {"app/ops.py": "def sub(a, b):\n    return a - b\n"},
                             "2026-09-07T12:00:00+00:00")  # no test changes: the whole suite is its check
    shas["binary"] = commit(repo, "Add the logo", {"assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00binary"},
                            "2026-09-08T10:00:00+00:00")
    shas["good_archived"] = commit(repo, "Add neg to calc", {
        "app/calc.py": CALC.replace("a - b", "a + b").replace("x * k", "k * x").replace(
            "def scale(x, k):\n", 'def scale(x, k):\n    """x times k."""\n') + "\n\ndef neg(x):\n    return -x\n",
        "tests/test_neg.py": "from app.calc import neg\n\n\ndef test_neg():\n    assert neg(4) == -4\n"},
        "2026-09-09T10:00:00+00:00")
    return repo, shas


@pytest.fixture(scope="module")
def mined(repo, tmp_path_factory):
    path, shas = repo
    out = tmp_path_factory.mktemp("mined") / "evals"
    result = run_cli("suite", "code-edits", "from-repo", str(path), "--since", "2026-09-01", "--max-files", "3",
                     "--format", "v4a,udiff", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line)["item"] for line in (out / "rows.jsonl").read_text().splitlines()]
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    return out, rows, {entry["commit"]: entry["reason"] for entry in skipped}, result.stdout


def test_only_verified_commits_after_since_become_items(repo, mined):
    _, shas = repo
    _, rows, skipped, stdout = mined
    assert [(r["commit"], r["format"]) for r in rows] == [
        (shas["good"], "v4a"), (shas["good"], "udiff"), (shas["fix_sub"], "v4a"), (shas["fix_sub"], "udiff"),
        (shas["good_archived"], "v4a"),
        (shas["good_archived"], "udiff")]
    assert skipped[shas["large"]] == "4 non-test files changed (more than --max-files 3)"
    assert skipped[shas["passes_before"]].startswith("tests pass at the parent already")
    assert skipped[shas["side"]].startswith("tests pass at the parent already")
    assert skipped[shas["fails_after"]].startswith("tests fail at the commit")
    assert skipped[shas["merge"]] == "merge commit"
    assert skipped[shas["binary"]].startswith("changes binary files: assets/logo.png")
    assert shas["old"] not in skipped and shas["root"] not in skipped  # before --since: not considered
    assert len(skipped) == 6
    for sha, reason in skipped.items():
        assert f"skipped {sha[:10]}" in stdout and reason in stdout
    assert "3 of 9 commits verified" in stdout


def test_the_task_is_the_message_and_the_parent_tree_checked_by_the_commits_tests(repo, mined):
    path, shas = repo
    out, rows, _, _ = mined
    good = rows[1]
    assert good["kind"] == "commit" and good["task_id"] == f"{path.name}-{shas['good'][:10]}"
    assert good["instruction"] == "Fix add: it subtracted\n\nadd(2, 3) returned -1."
    assert good["files"]["app/calc.py"] == CALC.replace("x * k", "k * x")  # the parent's, not the commit's
    assert good["test_files"] == {"tests/test_calc.py": TEST_FIXED}
    assert good["test_command"][-1] == "tests/test_calc.py" and good["context_files"] == ["app/calc.py"]
    assert "-    return a - b\n+    return a + b" in good["reference_diff"]
    assert good["messages"][1]["content"].startswith(good["instruction"])
    fix = rows[3]
    assert fix["test_files"] == {} and fix["test_command"][-4:] == [
        "tests/test_calc.py", "tests/test_m.py", "tests/test_ops.py", "tests/test_scale.py"]
    archived = rows[5]  # its parent tree holds a binary file: the tree goes in an archive
    assert "files" not in archived and archived["tree_archive"] == f"trees/{shas['binary']}.tar.gz"
    assert (out / archived["tree_archive"]).is_file()
    assert "def scale(x, k):" in archived["messages"][1]["content"]  # the context file is still shown
    spec = load_eval(out / "eval.yaml")
    tests_pass = next(c for c in spec.testing_criteria if c.type == "tests_pass")
    for row in (good, fix, archived):
        right = asyncio.run(grade(tests_pass, {"output_text": row["reference_diff"]}, row, None))
        assert right.passed, right.details
    wrong = asyncio.run(grade(tests_pass, {"output_text": good["reference_diff"].replace("a + b", "a * b")},
                              good, None))
    assert not wrong.passed


def test_bad_input_is_one_line_and_exit_2(tmp_path, repo):
    path, _ = repo
    plain = tmp_path / "plain"
    plain.mkdir()
    result = run_cli("suite", "code-edits", "from-repo", str(plain), "--since", "2026-09-01", "--out", str(tmp_path))
    assert result.returncode == 2 and str(plain) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run_cli("suite", "code-edits", "from-repo", str(path), "--since", "September", "--out", str(tmp_path))
    assert result.returncode == 2 and "--since" in result.stderr
