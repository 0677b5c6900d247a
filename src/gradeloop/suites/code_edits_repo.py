"""Code-edit tasks mined from a git repository's own history (``suite code-edits from-repo``).

A commit is a candidate when it is not a merge, was committed after ``since``, changes at most
``max_files`` files outside the tests, and has tests to run: the test modules it changes, or, when
it changes none, every test module of the tree at the commit. The task is the commit message and
the tree at the parent commit; the check is the commit's tests (the test files it changed are the
hidden ``test_files``); the reference change is the commit's diff. A candidate becomes an item only
when the sandbox shows its tests fail at the parent (with the commit's test files) and pass at the
commit; the rest are listed with why.

git is read through its command line (``git log``, ``diff-tree``, ``archive``), never by parsing
``.git``.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import tarfile
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InputError
from ._long import write_eval
from .code_edits import eval_definition, items, write_files

__all__ = ["DEFAULT_TEST_COMMAND", "Commit", "commits", "is_test_path", "mine"]

DEFAULT_TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"
INLINE_LIMIT = 1024 * 1024  # a start tree up to this many bytes of text goes inline in the item


@dataclass(frozen=True)
class Commit:
    """One commit as ``git log`` reports it."""

    sha: str
    parents: tuple[str, ...]
    committed: str
    message: str

    @property
    def subject(self) -> str:
        """The first line of the message."""
        return self.message.splitlines()[0] if self.message else ""


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"git {args[0]} failed: {message[-1] if message else result.returncode}", file=str(repo))
    return result.stdout if binary else result.stdout.decode("utf-8", "replace")


def commits(repo: str | Path, since: str) -> list[Commit]:
    """The commits reachable from HEAD committed on or after ``since`` (``YYYY-MM-DD``), oldest first."""
    try:
        date.fromisoformat(since)
    except ValueError:
        raise InputError(f"{since!r} is not a date (YYYY-MM-DD)", field="since") from None
    text = _git(Path(repo), "log", f"--since={since}T00:00:00", "--format=%H%x1f%P%x1f%cI%x1f%B%x1e", "HEAD")
    found = []
    for record in text.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) == 4:
            sha, parents, committed, message = fields
            found.append(Commit(sha, tuple(parents.split()), committed, message.strip()))
    return [c for c in reversed(found) if c.committed[:10] >= since]


def is_test_path(path: str) -> bool:
    """Whether ``path`` belongs to the tests: under a ``tests``/``test`` folder or named
    ``test_*.py`` / ``*_test.py`` / ``conftest.py``."""
    pure = PurePosixPath(path)
    return (any(part in ("tests", "test") for part in pure.parts[:-1]) or pure.name == "conftest.py"
            or (pure.suffix == ".py" and (pure.name.startswith("test_") or pure.stem.endswith("_test"))))


def _is_test_module(path: str) -> bool:
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name[:-3].endswith("_test"))


def _changed(repo: Path, parent: str, sha: str) -> dict[str, str]:
    """``{path: status}`` of the files the commit changes (A, M, D, T; renames as D + A)."""
    out = _git(repo, "diff-tree", "-r", "-z", "--no-renames", "--name-status", parent, sha)
    fields = [f for f in out.split("\0") if f]
    return {fields[i + 1]: fields[i][0] for i in range(0, len(fields) - 1, 2)}


def _tree(repo: Path, sha: str) -> tuple[dict[str, str], bytes, bool]:
    """The tree at ``sha``: its text files, the tar.gz archive ``git archive`` made, and whether every
    file is text (so the tree can go inline)."""
    archive = _git(repo, "archive", "--format=tar.gz", sha, binary=True)
    files, all_text = {}, True
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar:
            if member.isdir():
                continue
            handle = tar.extractfile(member) if member.isfile() else None
            data = handle.read() if handle else None
            if data is None or not _is_text(data):
                all_text = False
                continue
            files[member.name] = data.decode("utf-8")
    return files, archive, all_text


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in data


@dataclass
class _Candidate:
    commit: Commit
    task: dict[str, Any]
    archive: bytes | None  # the parent's tree when it does not go inline
    commit_archive: bytes
    context: dict[str, str]  # the texts of the context files, for the prompt


def _candidate(repo: Path, commit: Commit, max_files: int, test_command: list[str]) -> _Candidate | str:
    """The task a commit would make, or the reason it is not a candidate (a string)."""
    if len(commit.parents) > 1:
        return "merge commit"
    if not commit.parents:
        return "root commit (no parent to start from)"
    parent = commit.parents[0]
    changed = _changed(repo, parent, commit.sha)
    source = sorted(p for p in changed if not is_test_path(p))
    if len(source) > max_files:
        return f"{len(source)} non-test files changed (more than --max-files {max_files})"
    if not changed:
        return "changes no files"
    before, archive, inline = _tree(repo, parent)
    after, commit_archive, _ = _tree(repo, commit.sha)
    tests = {p: after[p] for p in sorted(changed) if is_test_path(p) and p in after}
    runnable = [p for p in tests if _is_test_module(p)] or sorted(p for p in after if _is_test_module(p))
    if not runnable:
        return "no test modules to run (no test_*.py or *_test.py at the commit)"
    binary = [p for p in changed if (p not in after and changed[p] != "D") or (p not in before and changed[p] != "A")]
    if binary:
        return f"changes binary files: {', '.join(sorted(binary)[:3])}"
    if not commit.message.strip():
        return "empty commit message"
    inline = inline and sum(len(t) for t in before.values()) <= INLINE_LIMIT
    task = _task(repo, commit, before, after, changed, tests, runnable, test_command)
    context = {p: before[p] for p in task["context_files"]}
    if inline:
        task["files"] = before
    else:
        task["tree_archive"] = f"trees/{parent}.tar.gz"
    return _Candidate(commit, task, None if inline else archive, commit_archive, context)


def _task(repo: Path, commit: Commit, before: dict[str, str], after: dict[str, str], changed: dict[str, str],
          tests: dict[str, str], runnable: list[str], test_command: list[str]) -> dict[str, Any]:
    from ..edits import diff_trees

    old = {p: before[p] for p in changed if p in before}
    new = {p: after[p] for p in changed if p in after}
    context = sorted(p for p in changed if p in before and not is_test_path(p))
    return {"task_id": f"{repo.resolve().name}-{commit.sha[:10]}", "kind": "commit", "project": repo.resolve().name,
            "commit": commit.sha, "committed": commit.committed, "instruction": commit.message.strip(),
            "context_files": context, "reference_diff": diff_trees(old, new),
            "test_command": [*test_command, *runnable], "test_files": tests}


def _verify(found: _Candidate, timeout: float) -> str | None:
    """None when the commit's tests fail at the parent and pass at the commit; else why not."""
    from ..edits import Tree, run_tests

    task = found.task
    with Tree.from_item(task) as tree:
        write_files(tree, task["test_files"])
        before = run_tests(tree, task["test_command"], timeout=timeout)
    if before.timed_out:
        return f"tests timed out at the parent (over {timeout:g} s)"
    if before.passed:
        return "tests pass at the parent already (nothing for the change to fix)"
    with tempfile.TemporaryDirectory(prefix="gradeloop-commit-") as scratch:
        archive = Path(scratch) / "commit.tar.gz"
        archive.write_bytes(found.commit_archive)
        with Tree.from_item({"tree_archive_abs": str(archive)}) as tree:
            after = run_tests(tree, task["test_command"], timeout=timeout)
    if after.timed_out:
        return f"tests timed out at the commit (over {timeout:g} s)"
    if not after.passed:
        tail = " ".join(after.output.strip().splitlines()[-2:])[-200:]
        return f"tests fail at the commit: {tail}"
    return None


def mine(repo: str | Path, since: str, out_dir: str | Path, *, max_files: int = 3, formats: list[str] | None = None,
         test_command: str = DEFAULT_TEST_COMMAND, timeout: float = 120,
         progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Mine ``repo`` into ``out_dir`` (eval.yaml, rows.jsonl, trees/, skipped.jsonl). Returns the
    write summary plus ``{"candidates", "skipped": [{"commit", "subject", "reason"}], "counts"}``."""
    from .code_edits import _formats

    repo, out = _work_tree(Path(repo).expanduser()), Path(out_dir)
    if max_files < 1:
        raise InputError("must be at least 1", field="max_files")
    chosen, command = _formats(formats), shlex.split(test_command)
    if not command:
        raise InputError("the test command is empty", field="test_command")
    rows, skipped, seen = [], [], 0
    for commit in commits(repo, since):
        if progress:
            progress(f"checking {commit.sha[:10]} {commit.subject[:60]}")
        reason = _consider(repo, commit, max_files, command, timeout, out, rows, chosen)
        seen += 1
        if reason:
            skipped.append({"commit": commit.sha, "subject": commit.subject, "reason": reason})
    return _write(out, rows, skipped, seen, {"repo": str(repo.resolve()), "since": since, "max_files": max_files,
                                             "formats": chosen, "test_command": test_command})


def _work_tree(path: Path) -> Path:
    """The top folder of the git work tree at ``path`` (where ``git archive`` and ``diff-tree``
    paths agree); raises InputError naming ``path``."""
    if not path.is_dir():
        raise InputError("not a folder", file=str(path))
    if _git(path, "rev-parse", "--is-inside-work-tree").strip() != "true":
        raise InputError("not a git work tree", file=str(path))
    return Path(_git(path, "rev-parse", "--show-toplevel").strip())


def _consider(repo: Path, commit: Commit, max_files: int, command: list[str], timeout: float, out: Path,
              rows: list[dict[str, Any]], formats: list[str]) -> str | None:
    found = _candidate(repo, commit, max_files, command)
    if isinstance(found, str):
        return found
    if found.archive is not None:
        path = out / found.task["tree_archive"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(found.archive)
        found.task["tree_archive_abs"] = str(path.resolve())
    reason = _verify(found, timeout)
    if reason is None:
        rows += items(found.task, formats, found.context)
    elif found.archive is not None:
        Path(found.task["tree_archive_abs"]).unlink(missing_ok=True)
    return reason


def _write(out: Path, rows: list[dict[str, Any]], skipped: list[dict[str, Any]], seen: int,
           meta: dict[str, Any]) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "skipped.jsonl", "w", encoding="utf-8", newline="\n") as handle:
        for entry in skipped:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    definition = eval_definition({"n": len(rows), **meta},
                                 name=f"Code edits from {Path(meta['repo']).name} since {meta['since']}",
                                 suite="code-edits-from-repo",
                                 description="Commits of the repository: make the change the message asks "
                                             "for; the commit's tests decide.")
    written = write_eval(out, definition, rows, "# Built by `gradeloop suite code-edits from-repo`; rows are in "
                                                "rows.jsonl, commits left out in skipped.jsonl.\n")
    counts = {"format": dict(Counter(r["format"] for r in rows))}
    return {**written, "candidates": seen, "verified": len(rows) // len(meta["formats"]),
            "skipped": skipped, "skipped_file": str(out / "skipped.jsonl"), "counts": counts}
